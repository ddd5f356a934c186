/* Loaded into Kannel's processes (LD_PRELOAD: bearerbox, smsbox, and fakesmsc with them) by
 * KannelGateway(nodelay=True): every TCP connection they open or accept gets TCP_NODELAY,
 * which Debian's Kannel 1.4.5 does not set.
 *
 * Why: smsbox writes small messages to bearerbox with Nagle's algorithm on. When bearerbox
 * has nothing to send back (smsbox's acknowledgement of a delivery report needs no answer),
 * its TCP acknowledgement is delayed by 40 ms, and smsbox's next messages wait for it: a
 * sendsms call then takes about 40 ms instead of under 1 ms (measured: one call at a time,
 * 50 calls/s without this, 1,774 with it). Used only to measure what a worker costs next to
 * a bare client once that stall is gone (bench/dispatch_kannel.py --nodelay). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void no_delay(int fd) {
    int on = 1, saved = errno; /* the caller reads errno after connect (EINPROGRESS...) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on); /* fails harmlessly on non-TCP */
    errno = saved;
}

int connect(int fd, const struct sockaddr *address, socklen_t length) {
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real) real = dlsym(RTLD_NEXT, "connect");
    int result = real(fd, address, length);
    no_delay(fd);
    return result;
}

int accept(int fd, struct sockaddr *address, socklen_t *length) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = dlsym(RTLD_NEXT, "accept");
    int result = real(fd, address, length);
    if (result >= 0) no_delay(result);
    return result;
}

int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = dlsym(RTLD_NEXT, "accept4");
    int result = real(fd, address, length, flags);
    if (result >= 0) no_delay(result);
    return result;
}
