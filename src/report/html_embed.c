/*
 * Build-time generator (not part of the program): turns the report page,
 * src/report/html_page.html, into a C header holding it as one string, so
 * the page stays an ordinary HTML file to edit and the program still needs
 * no file at run time.
 *
 *   html_embed IN.html OUT.h NAME   ->   static const char NAME[] = "...";
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: html_embed IN OUT.h NAME\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    FILE *out = fopen(argv[2], "wb");
    if (!out) {
        perror(argv[2]);
        fclose(in);
        return 1;
    }
    fprintf(out, "/* Generated from %s by html_embed at build time: edit that file. */\n",
            "src/report/html_page.html");
    fprintf(out, "static const char %s[] =\n\"", argv[3]);
    int c;
    while ((c = fgetc(in)) != EOF) {
        /* One C string per source line keeps the header readable and diffs small. */
        if (c == '\n') {
            fputs("\\n\"\n\"", out);
            continue;
        }
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '?')
            fputs("\\?", out); /* no trigraphs */
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\%03o", (unsigned)c);
        else
            fputc(c, out);
    }
    fputs("\";\n", out);
    int failed = ferror(in) || ferror(out);
    fclose(in);
    if (fclose(out) || failed) {
        fprintf(stderr, "html_embed: writing %s failed\n", argv[2]);
        return 1;
    }
    return 0;
}
