/* An SDL2 OpenGL program as games are: linked to the distribution's libSDL2
 * (Debian's links libgbm.so.1, libwayland-egl.so.1, libdrm.so.2 ...), which
 * dlopen()s libGL.so.1 when the window is made. It clears a window to green,
 * draws a yellow square with glScissor, reads two pixels back and prints the
 * renderer and "pixels ok".
 *
 *   sdl_gl [FRAMES]      (default 10; SDL_VIDEODRIVER=x11 by default) */
#include <SDL.h>
#include <stdio.h>
#include <stdlib.h>

#define SIZE 64
#define GL_COLOR_BUFFER_BIT 0x4000
#define GL_SCISSOR_TEST 0x0C11
#define GL_RGBA 0x1908
#define GL_UNSIGNED_BYTE 0x1401
#define GL_RENDERER 0x1F01

struct gl {
    void (*ClearColor)(float, float, float, float);
    void (*Clear)(unsigned);
    void (*Enable)(unsigned);
    void (*Disable)(unsigned);
    void (*Scissor)(int, int, int, int);
    void (*Finish)(void);
    void (*ReadPixels)(int, int, int, int, unsigned, unsigned, void *);
    const unsigned char *(*GetString)(unsigned);
};

static int fail(const char *what)
{
    fprintf(stderr, "sdl_gl: %s: %s\n", what, SDL_GetError());
    return 1;
}

static int load_gl(struct gl *gl)
{
    void **slots[] = { (void **)&gl->ClearColor, (void **)&gl->Clear, (void **)&gl->Enable,
                       (void **)&gl->Disable, (void **)&gl->Scissor, (void **)&gl->Finish,
                       (void **)&gl->ReadPixels, (void **)&gl->GetString };
    const char *names[] = { "glClearColor", "glClear", "glEnable", "glDisable", "glScissor",
                            "glFinish", "glReadPixels", "glGetString" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!(*slots[i] = SDL_GL_GetProcAddress(names[i])))
            return -1;
    return 0;
}

static void draw(const struct gl *gl)
{
    gl->ClearColor(0.0f, 1.0f, 0.0f, 1.0f);
    gl->Clear(GL_COLOR_BUFFER_BIT);
    gl->Enable(GL_SCISSOR_TEST);
    gl->Scissor(SIZE / 4, SIZE / 4, SIZE / 2, SIZE / 2);
    gl->ClearColor(1.0f, 1.0f, 0.0f, 1.0f);
    gl->Clear(GL_COLOR_BUFFER_BIT);
    gl->Disable(GL_SCISSOR_TEST);
    gl->Finish();
}

static int pixel_is(const struct gl *gl, int x, int y, unsigned r, unsigned g, unsigned b)
{
    unsigned char px[4] = { 0 };
    gl->ReadPixels(x, y, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, px);
    return px[0] == r && px[1] == g && px[2] == b;
}

int main(int argc, char **argv)
{
    int frames = argc > 1 ? atoi(argv[1]) : 10, ok = 1;
    struct gl gl;
    setenv("SDL_VIDEODRIVER", "x11", 0);
    if (SDL_Init(SDL_INIT_VIDEO) != 0)
        return fail("SDL_Init");
    SDL_Window *win = SDL_CreateWindow("sdl_gl", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED,
                                       SIZE, SIZE, SDL_WINDOW_OPENGL);
    if (!win)
        return fail("SDL_CreateWindow");
    SDL_GLContext ctx = SDL_GL_CreateContext(win);
    if (!ctx)
        return fail("SDL_GL_CreateContext");
    if (load_gl(&gl) != 0)
        return fail("SDL_GL_GetProcAddress");
    printf("renderer: %s\n", (const char *)gl.GetString(GL_RENDERER));
    for (int i = 0; i < frames; i++) {
        draw(&gl);
        ok = pixel_is(&gl, 1, 1, 0, 255, 0) && pixel_is(&gl, SIZE / 2, SIZE / 2, 255, 255, 0);
        SDL_GL_SwapWindow(win);
    }
    SDL_GL_DeleteContext(ctx);
    SDL_DestroyWindow(win);
    SDL_Quit();
    if (!ok) {
        fprintf(stderr, "sdl_gl: pixels wrong\n");
        return 1;
    }
    printf("pixels ok\n");
    return 0;
}
