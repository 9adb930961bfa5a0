/* A GLX program that renders a fixed number of frames into an X window and
 * checks them: each frame clears to a colour and draws a quad of another
 * colour over the centre; the last frame is read back with glReadPixels and
 * the corner and centre pixels must have the expected colours.
 *
 *   glx_frames [FRAMES]      (default 60)
 *
 * Prints the renderer, the time the frame loop took (for bench/), the pixels
 * it read and "frames: N ok"; exit 0 only
 * when every check passed. Uses only GL 1.1 and GLX 1.3, linked directly
 * (libGL.so.1 from glvnd), as an old game would. */
#include <GL/gl.h>
#include <GL/glx.h>
#include <X11/Xlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIZE 64

static int fail(const char *what)
{
    fprintf(stderr, "glx_frames: %s\n", what);
    return 1;
}

static void draw_frame(int i)
{
    float t = (float)(i % 16) / 16.0f;

    glClearColor(1.0f, 0.0f, 0.0f, 1.0f); /* red background */
    glClear(GL_COLOR_BUFFER_BIT);
    glColor3f(0.0f, 0.0f, 1.0f);          /* blue quad over the centre */
    glBegin(GL_QUADS);
    glVertex2f(-0.5f + t * 0.1f, -0.5f);
    glVertex2f(0.5f, -0.5f);
    glVertex2f(0.5f, 0.5f);
    glVertex2f(-0.5f, 0.5f);
    glEnd();
}

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int pixel_is(const unsigned char *px, int r, int g, int b)
{
    return abs(px[0] - r) < 8 && abs(px[1] - g) < 8 && abs(px[2] - b) < 8;
}

int main(int argc, char **argv)
{
    int frames = argc > 1 ? atoi(argv[1]) : 60;
    int attrs[] = { GLX_RGBA, GLX_RED_SIZE, 8, GLX_GREEN_SIZE, 8, GLX_BLUE_SIZE, 8,
                    GLX_DOUBLEBUFFER, None };
    unsigned char corner[4], centre[4];
    Display *dpy = XOpenDisplay(NULL);

    if (!dpy)
        return fail("cannot open the X display");
    XVisualInfo *vi = glXChooseVisual(dpy, DefaultScreen(dpy), attrs);
    if (!vi)
        return fail("glXChooseVisual found no RGBA double-buffered visual");
    XSetWindowAttributes swa = { 0 };
    swa.colormap = XCreateColormap(dpy, RootWindow(dpy, vi->screen), vi->visual, AllocNone);
    Window win = XCreateWindow(dpy, RootWindow(dpy, vi->screen), 0, 0, SIZE, SIZE, 0, vi->depth,
                               InputOutput, vi->visual, CWColormap, &swa);
    GLXContext ctx = glXCreateContext(dpy, vi, NULL, True);
    if (!ctx)
        return fail("glXCreateContext failed");
    XMapWindow(dpy, win);
    if (!glXMakeCurrent(dpy, win, ctx))
        return fail("glXMakeCurrent failed");
    printf("renderer: %s\n", (const char *)glGetString(GL_RENDERER));
    glViewport(0, 0, SIZE, SIZE);
    double start = now_ms();
    for (int i = 0; i < frames; i++) {
        draw_frame(i);
        if (i + 1 < frames)
            glXSwapBuffers(dpy, win);
    }
    glFinish();
    printf("frame loop: %.3f ms\n", now_ms() - start);
    glReadPixels(1, 1, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, corner);
    glReadPixels(SIZE / 2, SIZE / 2, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, centre);
    printf("corner pixel: %d,%d,%d centre pixel: %d,%d,%d\n", corner[0], corner[1], corner[2],
           centre[0], centre[1], centre[2]);
    glXSwapBuffers(dpy, win);
    int ok = glGetError() == GL_NO_ERROR && pixel_is(corner, 255, 0, 0) &&
             pixel_is(centre, 0, 0, 255);
    glXMakeCurrent(dpy, None, NULL);
    glXDestroyContext(dpy, ctx);
    XDestroyWindow(dpy, win);
    XFree(vi);
    XCloseDisplay(dpy);
    if (!ok)
        return fail("the pixels read back are not the colours drawn");
    printf("frames: %d ok\n", frames);
    return 0;
}
