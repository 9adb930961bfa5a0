#define _GNU_SOURCE
#include "forklock.h"

#include <stdlib.h>

#define MAX_LOCKS 64 /* the static ones and one per namespace (at most 15) */

typedef struct {
    pthread_mutex_t *lock;
    enum capsule_lock_rank rank;
} ranked;

/* Kept sorted by rank (stable: registration order within a rank). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static ranked locks[MAX_LOCKS];
static size_t n_locks;

static void
before_fork(void)
{
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < n_locks; i++)
        pthread_mutex_lock(locks[i].lock);
}

static void
after_fork(void)
{
    for (size_t i = n_locks; i-- > 0;)
        pthread_mutex_unlock(locks[i].lock);
    pthread_mutex_unlock(&registry_lock);
}

static void
install(void)
{
    pthread_atfork(before_fork, after_fork, after_fork);
}

void
capsule_forklock_add(pthread_mutex_t *lock, enum capsule_lock_rank rank)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, install);
    pthread_mutex_lock(&registry_lock);
    size_t at = n_locks;
    for (size_t i = 0; i < n_locks; i++) {
        if (locks[i].lock == lock) {
            pthread_mutex_unlock(&registry_lock);
            return;
        }
        if (at == n_locks && locks[i].rank > rank)
            at = i;
    }
    if (n_locks < MAX_LOCKS) {
        for (size_t i = n_locks; i > at; i--)
            locks[i] = locks[i - 1];
        locks[at] = (ranked){ lock, rank };
        n_locks++;
    }
    pthread_mutex_unlock(&registry_lock);
}
