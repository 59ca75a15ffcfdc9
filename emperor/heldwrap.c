/* The Emperor's wrapper for its vassals, compiled: what heldwrap.py does, without
 * starting a Python at every vassal spawn (15-25 ms of a 0.3 s start). It asks the
 * holder for the vassal's held sockets, puts them at fds FD_BASE... and execs uwsgi.
 *
 *     heldwrap HOLDER_SOCKET UWSGI_BINARY -- UWSGI_ARGS...
 *
 * The wire and its constants are heldwire.py's: they come in as -D flags when
 * emperor.heldbuild compiles this file, so they are written down once. Whatever
 * fails, the vassal still starts: without HELD_ENV its config binds its sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#if !defined(FD_BASE) || !defined(HELD_ENV) || !defined(MAGIC) || !defined(MAX_FDS) || !defined(ASK_FOR)
#error "compile through emperor.heldbuild, which passes heldwire's constants"
#endif

static const char *CONFIG_OPTIONS[] = {"--ini", "--xml", "--yaml", "--json", "--config", "--inherit", NULL};

/* The vassal's name from the Emperor's command line, as heldwrap.vassal_name. */
static const char *vassal_name(int argc, char **argv) {
    for (int i = 0; i + 1 < argc; i++) {
        for (const char **option = CONFIG_OPTIONS; *option; option++) {
            if (strcmp(argv[i], *option) == 0) {
                const char *value = argv[i + 1];
                if (strncmp(value, "emperor://", 10) == 0) value += 10;
                const char *slash = strrchr(value, '/');
                return slash ? slash + 1 : value;
            }
        }
    }
    return "";
}

/* The held fds of `name` into fds[]; their count, or -1 with errno set. */
static int ask(const char *holder, const char *name, int *fds) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(holder) >= sizeof(address.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(address.sun_path, holder);
    int conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (conn < 0) return -1;
    struct timeval limit = {.tv_sec = ASK_FOR};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    char request[512];
    int length = snprintf(request, sizeof(request), "get %s\n", name);
    if (length < 0 || (size_t)length >= sizeof(request)) {
        close(conn);
        errno = ENAMETOOLONG;
        return -1;
    }
    if (connect(conn, (struct sockaddr *)&address, sizeof(address)) < 0 ||
        send(conn, request, (size_t)length, MSG_NOSIGNAL) != length) {
        int saved = errno;
        close(conn);
        errno = saved;
        return -1;
    }
    char data[64];
    union {
        char bytes[CMSG_SPACE(MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
    struct msghdr message = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof(control.bytes)};
    ssize_t got = recvmsg(conn, &message, MSG_CMSG_CLOEXEC);
    int saved = errno;
    close(conn);
    if (got < 0) {
        errno = saved;
        return -1;
    }
    int count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n && count < MAX_FDS; i++) memcpy(&fds[count++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    uint32_t announced;
    size_t magic = strlen(MAGIC);
    if ((size_t)got != magic + 4 || memcmp(data, MAGIC, magic) != 0 ||
        (memcpy(&announced, data + magic, 4), announced != (uint32_t)count)) { /* u32 little-endian */
        for (int i = 0; i < count; i++) close(fds[i]);
        errno = EPROTO;
        return -1;
    }
    return count;
}

/* The Emperor's pipes to its vassal, named by these variables: where one of them is at
 * FD_BASE + i (an Emperor with a few dozen vassals gets there), it is moved above the
 * held fds and its variable follows it. */
static const char *MOVABLE[] = {"UWSGI_EMPEROR_FD", "UWSGI_EMPEROR_FD_CONFIG", NULL};

/* 1 when FD_BASE... FD_BASE + count - 1 are free now; 0 when one is taken by an fd no
 * variable names (not ours to clobber). */
static int make_room(int count) {
    for (int i = 0; i < count; i++) {
        int fd = FD_BASE + i;
        if (fcntl(fd, F_GETFD) < 0) continue;
        const char **var = MOVABLE;
        while (*var && !(getenv(*var) && atoi(getenv(*var)) == fd)) var++;
        if (!*var) return 0;
        int moved = fcntl(fd, F_DUPFD, FD_BASE + MAX_FDS); /* inheritable, as it was */
        if (moved < 0) return 0;
        char text[16];
        snprintf(text, sizeof(text), "%d", moved);
        setenv(*var, text, 1);
        close(fd);
    }
    return 1;
}

/* Move fds to FD_BASE, FD_BASE+1, ... (inheritable); 0, and every one closed, when one
 * of those is taken and cannot be moved (see make_room). */
static int place(int *fds, int count) {
    if (!make_room(count)) {
        for (int j = 0; j < count; j++) close(fds[j]);
        return 0;
    }
    for (int i = 0; i < count; i++) {
        dup2(fds[i], FD_BASE + i); /* the copy is inheritable */
        close(fds[i]);
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: heldwrap HOLDER UWSGI -- ARGS\n");
        return 2;
    }
    const char *holder = argv[1];
    char *uwsgi = argv[2];
    unsetenv(HELD_ENV);
    const char *name = vassal_name(argc - 4, argv + 4);
    if (*name) {
        int fds[MAX_FDS];
        int count = ask(holder, name, fds);
        if (count < 0) {
            fprintf(stderr, "[held sockets] none for %s: %s\n", name, strerror(errno));
        } else if (count > 0 && place(fds, count)) {
            char held[16];
            snprintf(held, sizeof(held), "%d", count);
            setenv(HELD_ENV, held, 1);
        }
    }
    argv[3] = uwsgi; /* uwsgi's argv: itself, then the Emperor's arguments */
    execv(uwsgi, argv + 3);
    fprintf(stderr, "[held sockets] cannot run %s: %s\n", uwsgi, strerror(errno));
    return 127;
}
