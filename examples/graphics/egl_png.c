/* Headless rendering with EGL's surfaceless platform (no X server, no GPU
 * needed: llvmpipe): a GLES 2 fragment shader draws a picture into a
 * framebuffer object, glReadPixels reads it back and the program writes it as
 * a PNG file with zlib.
 *
 *   egl_png OUTPUT.png [SIZE]      (default 256)
 *
 * Prints the EGL vendor, the GL renderer and the file written. */
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES2/gl2.h>
#include <GLES2/gl2ext.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static const char *vertex_src =
    "attribute vec2 pos;\n"
    "varying vec2 uv;\n"
    "void main() { uv = pos; gl_Position = vec4(pos, 0.0, 1.0); }\n";

/* A few Mandelbrot iterations coloured by escape time, on a blue ground. */
static const char *fragment_src =
    "precision highp float;\n"
    "varying vec2 uv;\n"
    "void main() {\n"
    "  vec2 c = uv * 1.3 - vec2(0.6, 0.0), z = vec2(0.0);\n"
    "  float n = 0.0;\n"
    "  for (int i = 0; i < 64; i++) {\n"
    "    z = vec2(z.x * z.x - z.y * z.y, 2.0 * z.x * z.y) + c;\n"
    "    if (dot(z, z) > 4.0) break;\n"
    "    n += 1.0;\n"
    "  }\n"
    "  float t = n / 64.0;\n"
    "  vec3 inside = vec3(0.05, 0.05, 0.15);\n"
    "  vec3 col = vec3(0.5 + 0.5 * cos(6.2832 * (t + vec3(0.0, 0.33, 0.67))));\n"
    "  gl_FragColor = vec4(n >= 64.0 ? inside : col * sqrt(t) + vec3(0.0, 0.1, 0.3) * (1.0 - t), 1.0);\n"
    "}\n";

static int fail(const char *what)
{
    fprintf(stderr, "egl_png: %s\n", what);
    return 1;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int write_chunk(FILE *f, const char *type, const unsigned char *data, uint32_t len)
{
    unsigned char head[8], tail[4];
    uLong crc = crc32(0L, (const Bytef *)type, 4);

    put32(head, len);
    memcpy(head + 4, type, 4);
    if (len)
        crc = crc32(crc, data, len);
    put32(tail, (uint32_t)crc);
    return fwrite(head, 1, 8, f) == 8 && (!len || fwrite(data, 1, len, f) == len) &&
           fwrite(tail, 1, 4, f) == 4;
}

/* RGBA rows bottom-up (as glReadPixels gives them) -> an 8-bit RGB PNG. */
static int write_png(const char *path, const unsigned char *rgba, int w, int h)
{
    static const unsigned char signature[8] = { 137, 80, 78, 71, 13, 10, 26, 10 };
    size_t raw_len = (size_t)h * (1 + 3 * (size_t)w);
    unsigned char ihdr[13] = { 0 }, *raw = malloc(raw_len);
    uLongf packed_len = compressBound(raw_len);
    unsigned char *packed = malloc(packed_len);
    int ok = 0;

    if (raw && packed) {
        for (int y = 0; y < h; y++) {
            unsigned char *row = raw + (size_t)y * (1 + 3 * (size_t)w);
            const unsigned char *src = rgba + (size_t)(h - 1 - y) * 4 * (size_t)w;
            row[0] = 0; /* filter: none */
            for (int x = 0; x < w; x++)
                memcpy(row + 1 + 3 * x, src + 4 * x, 3);
        }
        put32(ihdr, (uint32_t)w);
        put32(ihdr + 4, (uint32_t)h);
        ihdr[8] = 8; /* bit depth */
        ihdr[9] = 2; /* colour type: RGB */
        FILE *f = fopen(path, "wb");
        ok = f && compress2(packed, &packed_len, raw, raw_len, 9) == Z_OK &&
             fwrite(signature, 1, 8, f) == 8 && write_chunk(f, "IHDR", ihdr, 13) &&
             write_chunk(f, "IDAT", packed, (uint32_t)packed_len) &&
             write_chunk(f, "IEND", NULL, 0);
        if (f && fclose(f) != 0)
            ok = 0;
    }
    free(raw);
    free(packed);
    return ok;
}

static GLuint shader(GLenum type, const char *src)
{
    GLuint s = glCreateShader(type);
    GLint ok = 0;

    glShaderSource(s, 1, &src, NULL);
    glCompileShader(s);
    glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
    return ok ? s : 0;
}

static EGLDisplay surfaceless_display(void)
{
    PFNEGLGETPLATFORMDISPLAYEXTPROC get_display =
        (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
    const char *exts = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);

    if (!get_display || !exts || !strstr(exts, "EGL_MESA_platform_surfaceless"))
        return EGL_NO_DISPLAY;
    return get_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
}

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int render(int size)
{
    static const GLfloat triangle[] = { -1.0f, -1.0f, 3.0f, -1.0f, -1.0f, 3.0f };
    GLuint fbo, rb, prog = glCreateProgram();
    GLuint vs = shader(GL_VERTEX_SHADER, vertex_src), fs = shader(GL_FRAGMENT_SHADER, fragment_src);

    if (!vs || !fs)
        return 0;
    glGenFramebuffers(1, &fbo);
    glBindFramebuffer(GL_FRAMEBUFFER, fbo);
    glGenRenderbuffers(1, &rb);
    glBindRenderbuffer(GL_RENDERBUFFER, rb);
    glRenderbufferStorage(GL_RENDERBUFFER, GL_RGBA8_OES, size, size);
    glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rb);
    if (glCheckFramebufferStatus(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE)
        return 0;
    glAttachShader(prog, vs);
    glAttachShader(prog, fs);
    glBindAttribLocation(prog, 0, "pos");
    glLinkProgram(prog);
    glUseProgram(prog);
    glViewport(0, 0, size, size);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, triangle);
    glEnableVertexAttribArray(0);
    glDrawArrays(GL_TRIANGLES, 0, 3);
    glFinish();
    return glGetError() == GL_NO_ERROR;
}

int main(int argc, char **argv)
{
    int size = argc > 2 ? atoi(argv[2]) : 256;
    EGLint major, minor, n = 0;
    EGLConfig config;
    const EGLint config_attrs[] = { EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE,
                                    EGL_OPENGL_ES2_BIT, EGL_NONE };
    const EGLint ctx_attrs[] = { EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE };

    if (argc < 2 || size < 8 || size > 4096)
        return fail("usage: egl_png OUTPUT.png [SIZE 8..4096]");
    EGLDisplay dpy = surfaceless_display();
    if (dpy == EGL_NO_DISPLAY || !eglInitialize(dpy, &major, &minor))
        return fail("no EGL surfaceless display (EGL_MESA_platform_surfaceless)");
    if (!eglBindAPI(EGL_OPENGL_ES_API) || !eglChooseConfig(dpy, config_attrs, &config, 1, &n) ||
        n < 1)
        return fail("no GLES 2 EGL config");
    EGLContext ctx = eglCreateContext(dpy, config, EGL_NO_CONTEXT, ctx_attrs);
    if (ctx == EGL_NO_CONTEXT || !eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx))
        return fail("cannot make a surfaceless GLES 2 context current");
    printf("EGL %d.%d vendor: %s\n", major, minor, eglQueryString(dpy, EGL_VENDOR));
    printf("renderer: %s\n", (const char *)glGetString(GL_RENDERER));
    double start = now_ms();
    if (!render(size))
        return fail("rendering failed");
    printf("render: %.3f ms\n", now_ms() - start);
    unsigned char *pixels = malloc((size_t)size * size * 4);
    if (!pixels)
        return fail("out of memory");
    glReadPixels(0, 0, size, size, GL_RGBA, GL_UNSIGNED_BYTE, pixels);
    const unsigned char *c = pixels + ((size_t)size / 2 * size + size / 2) * 4;
    printf("centre pixel: %d,%d,%d\n", c[0], c[1], c[2]);
    if (!write_png(argv[1], pixels, size, size))
        return fail("cannot write the PNG file");
    printf("wrote %s (%dx%d)\n", argv[1], size, size);
    free(pixels);
    eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    eglDestroyContext(dpy, ctx);
    eglTerminate(dpy);
    return 0;
}
