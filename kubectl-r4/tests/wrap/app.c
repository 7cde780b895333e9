/* The application of the podman kube play test: a static program standing
 * in for an image's entrypoint. `app report NAME... ` writes, to
 * /status/report, the length and FNV-1a hash of each variable (or, for
 * file:NAME, of the file its value names), never a value; the mode, size
 * and file system of /r4/r4-exec; then waits. On SIGTERM it writes
 * /status/term and exits 143, as a well-behaved server would. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long long fnv(const unsigned char *p, size_t n) {
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

static void on_term(int sig) {
    (void)sig;
    int fd = open("/status/term", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) { write(fd, "TERM\n", 5); close(fd); }
    _exit(143);
}

int main(int argc, char **argv) {
    signal(SIGTERM, on_term);
    FILE *out = fopen("/status/report.tmp", "w");
    if (!out) return 2;
    fprintf(out, "argv0=%s\n", argv[0]);
    for (int i = 2; i < argc; i++) {
        const char *name = argv[i];
        int is_file = strncmp(name, "file:", 5) == 0;
        if (is_file) name += 5;
        const char *v = getenv(name);
        if (!v) { fprintf(out, "%s unset\n", argv[i]); continue; }
        static unsigned char buf[65536];
        size_t n = 0;
        if (is_file) {
            int fd = open(v, O_RDONLY);
            if (fd < 0) { fprintf(out, "%s unreadable\n", argv[i]); continue; }
            ssize_t r;
            while ((r = read(fd, buf + n, sizeof buf - n)) > 0) n += r;
            close(fd);
        } else {
            n = strlen(v);
            memcpy(buf, v, n);
        }
        fprintf(out, "%s len=%zu fnv=%016llx\n", argv[i], n, fnv(buf, n));
    }
    struct stat st;
    if (stat("/r4/r4-exec", &st) == 0)
        fprintf(out, "shim mode=%o size=%lld\n", st.st_mode & 07777, (long long)st.st_size);
    FILE *m = fopen("/proc/self/mounts", "r");
    char line[1024];
    while (m && fgets(line, sizeof line, m)) {
        char dev[256], dir[256], type[64];
        if (sscanf(line, "%255s %255s %63s", dev, dir, type) == 3 && strcmp(dir, "/r4") == 0)
            fprintf(out, "mount /r4 %s %s\n", type, strstr(line, " ro,") || strstr(line, " ro ") ? "ro" : "rw");
    }
    fprintf(out, "ready\n");
    fclose(out);
    rename("/status/report.tmp", "/status/report");
    for (;;) pause();
}
