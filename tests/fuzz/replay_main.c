/*
 * replay_main.c - runs a fuzz target over every file of a corpus directory.
 *
 * Linked with each tests/fuzz/fuzz_<target>.c in place of libFuzzer, so the
 * saved corpus (seeds plus every regression input) is replayed on every
 * test run, under the sanitizers.  Prints "replayed N inputs".
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0;
    size_t cap = 0;
    int rc = 0;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *n = realloc(buf, ncap);
            if (n == NULL) {
                rc = -1;
                break;
            }
            buf = n;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (rc == 0)
        (void)LLVMFuzzerTestOneInput(buf != NULL ? buf : (const uint8_t *)"", len);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    size_t count = 0;

    for (int i = 1; i < argc; i++) {
        DIR *dir = opendir(argv[i]);
        struct dirent *de;

        if (dir == NULL) {
            if (replay_file(argv[i]) < 0)
                return 1;
            count++;
            continue;
        }
        while ((de = readdir(dir)) != NULL) {
            char path[4096];
            if (de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
            if (replay_file(path) < 0) {
                closedir(dir);
                return 1;
            }
            count++;
        }
        closedir(dir);
    }
    if (count == 0) {
        fprintf(stderr, "no inputs found\n");
        return 1;
    }
    printf("replayed %zu inputs\n", count);
    return 0;
}
