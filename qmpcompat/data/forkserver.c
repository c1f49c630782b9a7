/*
 * qmpcompat's fork server: QEMUs forked from one process that has already
 * loaded and relocated the binary and its libraries.
 *
 * Most of a bare QEMU start is the dynamic loader's work: a distribution's
 * qemu-system-x86_64 carries some 280,000 relative relocations over 14 MB of
 * .data.rel.ro, and every exec copies and writes those pages anew. This
 * library is preloaded (LD_PRELOAD) into one QEMU process, the server. Its
 * constructor runs after the loader has done that work and the libraries'
 * own constructors have run, and before QEMU's main(). Told by the variable
 * QMPCOMPAT_FORKSERVER which descriptor is its control socket (a
 * SOCK_SEQPACKET socket pair with the harness), it never returns: it forks
 * one QEMU per request, and each child returns from the constructor into
 * QEMU's own start-up, with the server's command line. Without the variable,
 * or in a program whose argv[0] is not QMPCOMPAT_FORKSERVER_PROGRAM (a
 * launcher that sets something up and executes QEMU, such as setpriv, gets
 * the library first), it does nothing.
 *
 * Protocol (one message each way per QEMU):
 *   server -> harness, once: "R" (ready), or "T" (more than one thread: a
 *     fork would lose threads, so the server refuses and exits).
 *   harness -> server: "F" then NUL-ended NAME=value entries set in the
 *     child's environment, with two descriptors (SCM_RIGHTS): the directory
 *     the child works in (its relative QMP socket path is resolved there) and
 *     the file its stdout and stderr go to.
 *   server -> harness: the child's pid (a native int; 0 when fork failed).
 * The server exits when the harness closes its end.
 *
 * Each child is forked through an intermediate process that exits at once,
 * so the child is adopted by the nearest child subreaper, the harness (which
 * must be one): the harness then waits for it like any child of its own. The
 * server replies only after the intermediate is gone, so the child is
 * adopted by then. The child then sets PR_SET_PDEATHSIG (it dies with the
 * harness), makes its own process group, and takes its directory, output and
 * environment.
 *
 * Only functions of glibc's oldest symbol versions are used (no strtol,
 * which newer headers redirect to a newer symbol), so a library built on one
 * Debian release loads into the glibc of a build from another.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CTL_ENV "QMPCOMPAT_FORKSERVER"
#define PROGRAM_ENV "QMPCOMPAT_FORKSERVER_PROGRAM"
#define MAX_REQUEST 8192
#define ADOPT_WAIT_US 5000000

static char request[MAX_REQUEST + 1]; /* static: the child's environment points into it */

static int parse_uint(const char *s, size_t n)
{
    int v = 0;
    size_t i;

    if (n == 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 100000) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The "Threads:" count of /proc/self/status; -1 if it cannot be read. */
static int thread_count(void)
{
    char buf[4096];
    ssize_t n, total = 0;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    char *line, *end;

    if (fd < 0) {
        return -1;
    }
    while (total < (ssize_t)sizeof buf - 1 &&
           (n = read(fd, buf + total, sizeof buf - 1 - total)) > 0) {
        total += n;
    }
    close(fd);
    buf[total] = 0;
    line = strstr(buf, "\nThreads:\t");
    if (!line) {
        return -1;
    }
    line += strlen("\nThreads:\t");
    end = strchr(line, '\n');
    return parse_uint(line, end ? (size_t)(end - line) : strlen(line));
}

/* One request: its length, and its two descriptors in fds; -1 at the end. */
static ssize_t receive(int ctl, int fds[2])
{
    struct iovec iov = { request, MAX_REQUEST };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    struct msghdr msg;
    struct cmsghdr *c;
    ssize_t n;

    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    do {
        n = recvmsg(ctl, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        return -1;
    }
    c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(2 * sizeof(int)) || request[0] != 'F' ||
        (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        return -1;
    }
    memcpy(fds, CMSG_DATA(c), 2 * sizeof(int));
    request[n] = 0;
    return n;
}

/* In the child: wait to be adopted by the harness, then become its QEMU. */
static void become_qemu(int ctl, pid_t harness, const int fds[2], ssize_t length)
{
    char *entry;
    int waited = 0, null;

    close(ctl);
    setpgid(0, 0);
    while (getppid() != harness) { /* the intermediate is exiting */
        if (waited >= ADOPT_WAIT_US) {
            _exit(127);
        }
        usleep(20);
        waited += 20;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != harness) { /* the harness died before the line above */
        _exit(127);
    }
    if (fchdir(fds[0]) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0) {
        _exit(127);
    }
    close(fds[0]);
    close(fds[1]);
    null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0) {
        _exit(127);
    }
    if (null > 0) {
        close(null);
    }
    for (entry = request + 1; entry < request + length; entry += strlen(entry) + 1) {
        if (strchr(entry, '=') && putenv(entry) != 0) {
            _exit(127);
        }
    }
}

/* glibc passes a constructor the program's argc, argv and environment. */
__attribute__((constructor)) static void forkserver(int argc, char **argv, char **envp)
{
    const char *name = getenv(CTL_ENV), *program = getenv(PROGRAM_ENV);
    int ctl = name ? parse_uint(name, strlen(name)) : -1;
    pid_t harness = getppid();
    int *slot;

    (void)envp;
    if (ctl < 0 || !program || argc < 1 || strcmp(argv[0], program) != 0) {
        return; /* an ordinary QEMU, or the launcher before it */
    }
    unsetenv(CTL_ENV);
    unsetenv(PROGRAM_ENV);
    unsetenv("LD_PRELOAD"); /* not for what QEMU runs (an exec: migration's command) */
    if (thread_count() != 1) {
        send(ctl, "T", 1, MSG_NOSIGNAL);
        _exit(1);
    }
    slot = mmap(NULL, sizeof *slot, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (slot == MAP_FAILED || send(ctl, "R", 1, MSG_NOSIGNAL) != 1) {
        _exit(1);
    }
    for (;;) {
        int fds[2], status, pid;
        ssize_t length = receive(ctl, fds);
        pid_t middle;

        if (length < 0) {
            _exit(0);
        }
        *slot = 0;
        middle = fork();
        if (middle == 0) {
            pid_t child = fork();

            if (child == 0) {
                become_qemu(ctl, harness, fds, length);
                munmap(slot, sizeof *slot);
                return; /* into QEMU's own start-up */
            }
            *slot = child > 0 ? child : 0;
            _exit(0);
        }
        close(fds[0]);
        close(fds[1]);
        if (middle > 0) {
            while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {
            }
        }
        pid = middle > 0 ? *slot : 0;
        if (send(ctl, &pid, sizeof pid, MSG_NOSIGNAL) != sizeof pid) {
            _exit(0);
        }
    }
}
