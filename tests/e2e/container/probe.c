/* A static test program for tests/container.rs, run as COMMAND inside a
 * FROM-scratch image:
 *   probe print NAME...   prints NAME=value per variable; file:NAME prints
 *                         the content of the file whose path NAME holds
 *   probe sleep           prints "ready" and waits, with no signal handler
 *   probe orphans         orphans 5 short-lived processes, then counts the
 *                         zombies left in /proc ("zombies=N")
 *   probe pid             prints its pid and its parent's
 *   probe ids             prints its uid and gid
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int print(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "file:", 5) == 0) {
            const char *path = getenv(argv[i] + 5);
            FILE *f = path ? fopen(path, "r") : NULL;
            if (!f) { printf("%s=<cannot open>\n", argv[i]); continue; }
            char buf[4096];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = 0;
            fclose(f);
            printf("%s=%s\n", argv[i], buf);
        } else {
            const char *v = getenv(argv[i]);
            printf("%s=%s\n", argv[i], v ? v : "<unset>");
        }
    }
    return 0;
}

static int zombies(void) {
    int z = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], stat[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(stat, sizeof stat, f)) {
            char *p = strrchr(stat, ')');
            if (p && p[1] == ' ' && p[2] == 'Z') z++;
        }
        fclose(f);
    }
    if (d) closedir(d);
    return z;
}

static int orphans(void) {
    for (int i = 0; i < 5; i++) {
        pid_t child = fork();
        if (child == 0) {
            if (fork() == 0) { usleep(100000); _exit(0); }
            _exit(0);
        }
        waitpid(child, NULL, 0);
    }
    sleep(1);
    printf("zombies=%d\n", zombies());
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 2 && strcmp(argv[1], "print") == 0) return print(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "orphans") == 0) return orphans();
    if (argc >= 2 && strcmp(argv[1], "pid") == 0) {
        printf("pid=%d ppid=%d\n", (int)getpid(), (int)getppid());
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "ids") == 0) {
        printf("uid=%d gid=%d\n", (int)getuid(), (int)getgid());
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "sleep") == 0) {
        puts("ready");
        for (;;) pause();
    }
    fprintf(stderr, "usage: probe print|sleep|orphans|pid|ids\n");
    return 2;
}
