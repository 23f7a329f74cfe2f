/*
 * loop.c: the event loop: the listening socket, client connections, the
 * reading of requests and the writing of replies.
 *
 * Why an epoll loop of our own on one thread (and not libuv or libevent,
 * or threads): it is a hundred lines, it adds no dependency, and one
 * thread owning every command gives the order of writes to the engine
 * handle and the isolation of MULTI blocks for free, as in Redis's ae.c.
 * The engine's own threads (flusher, merge, TTL sweeper) work beside it.
 *
 * A round: epoll_wait; for each readable client, one read and every
 * complete request in its buffer run (pipelining); then, under --sync
 * always, one sync covers the writes of the round; then the round's
 * replies are written straight to the sockets, as Redis's beforeSleep
 * does: no EPOLLOUT event is asked for while a socket takes them
 * (out_ready marks how far a client's output may go: replies made after it
 * wait for the end of their own round). A client whose socket takes less
 * than its output is watched for EPOLLOUT until it has caught up.
 * Clients are freed at the end of the round, so an event later in the
 * same batch never sees freed memory.
 *
 * Limits: a client is closed when its unsent output passes --output-limit
 * (Redis's client-output-buffer-limit) and after any protocol error (as
 * Redis does); requests are bounded by the parser (resp.c); at most
 * --maxclients connections, past which a client gets Redis's
 * "max number of clients reached" and is closed.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "calypsod.h"

/* epoll's data for the descriptors that are not clients */
static char cd_ev_listen, cd_ev_signal;

static cd_client *cd_freelist;  /* closed, freed at the end of the round */

#define CD_READ_CHUNK (64 * 1024)

static const char cd_denied[] =
    "-DENIED Redis is running in protected mode because protected "
    "mode is enabled and no password is set for the default user. "
    "In this mode connections are only accepted from the loopback interface. "
    "If you want to connect from external computers to Redis you "
    "may adopt one of the following solutions: "
    "1) Just disable protected mode sending the command "
    "'CONFIG SET protected-mode no' from the loopback interface "
    "by connecting to Redis from the same host the server is "
    "running, however MAKE SURE Redis is not publicly accessible "
    "from internet if you do so. Use CONFIG REWRITE to make this "
    "change permanent. "
    "2) Alternatively you can just disable the protected mode by "
    "editing the Redis configuration file, and setting the protected "
    "mode option to 'no', and then restarting the server. "
    "3) If you started the server manually just for testing, restart "
    "it with the '--protected-mode no' option. "
    "4) Setup a an authentication password for the default user. "
    "NOTE: You only need to do one of the above things in order for "
    "the server to start accepting connections from the outside.\r\n";

void cd_client_kill(cd_client *c)
{
    if (c->closed) return;
    c->closed = 1;
    c->in_start = c->in.len; /* nothing more of it runs */
    c->fnext = cd_freelist;
    cd_freelist = c;
}

static void cd_client_free(cd_client *c)
{
    close(c->fd); /* also removes it from the epoll set */
    if (c->prev) c->prev->next = c->next;
    else cd_srv.clients = c->next;
    if (c->next) c->next->prev = c->prev;
    cd_srv.nclients--;
    cd_multi_reset(c);
    cd_req_free(&c->req);
    cd_buf_free(&c->in);
    cd_buf_free(&c->out);
    free(c->name);
    free(c->lib_name);
    free(c->lib_ver);
    free(c);
}

static void cd_client_events(cd_client *c, int want_write)
{
    if (c->want_write == want_write || c->closed) return;
    struct epoll_event ev = { .events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c };
    if (epoll_ctl(cd_srv.epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->want_write = want_write;
}

static void cd_client_mark_pending(cd_client *c)
{
    if (c->pending) return;
    c->pending = 1;
    c->pnext = cd_srv.pending;
    cd_srv.pending = c;
}

/* Writes what the socket takes of the replies cleared to go (those before
 * out_ready: covered by the sync of their round under --sync always). */
static void cd_client_write(cd_client *c)
{
    while (c->out_sent < c->out_ready) {
        ssize_t n = write(c->fd, c->out.p + c->out_sent, c->out_ready - c->out_sent);
        if (n > 0) {
            c->out_sent += (size_t)n;
            cd_srv.stat_net_out += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            cd_client_events(c, 1);
            return;
        }
        cd_log(CD_LOG_VERBOSE, "client %s: write error: %s", c->addr, strerror(errno));
        cd_client_kill(c);
        return;
    }
    cd_client_events(c, 0);
    if (c->out_sent < c->out.len) return; /* the rest waits for its round's end */
    c->out.len = c->out_sent = c->out_ready = 0;
    /* a big reply's buffer is given back instead of kept per client */
    if (c->out.cap > 64 * 1024) cd_buf_free(&c->out);
    if (c->close_after) cd_client_kill(c);
}

static void cd_client_check_output(cd_client *c)
{
    if (c->closed || c->out.len - c->out_sent <= cd_srv.output_limit) return;
    cd_log(CD_LOG_WARNING, "Client id=%llu addr=%s closed for overcoming of output buffer limits "
           "(%zu bytes unsent, --output-limit %llu).", (unsigned long long)c->id, c->addr,
           c->out.len - c->out_sent, (unsigned long long)cd_srv.output_limit);
    cd_client_kill(c);
}

/* Runs every complete request in c's query buffer. */
/* Pipelined GETs are read together (calypso_get_many: their lookups'
 * cache misses overlap): a plain GET of a client outside MULTI, whose key
 * lies in the input buffer (a multibulk request, so the key stays put
 * while the next requests are parsed), joins the run; anything else ends
 * it, after the run's replies, so replies keep the requests' order. */
#define CD_GET_RUN 16

typedef struct cd_get_run { size_t n; cd_arg keys[CD_GET_RUN]; } cd_get_run;

static int cd_get_joins_run(const cd_client *c, int argc, const cd_arg *argv)
{
    const char *n = argv[0].p;
    return argc == 2 && argv[0].len == 3 && (n[0] | 0x20) == 'g' && (n[1] | 0x20) == 'e' &&
           (n[2] | 0x20) == 't' && !c->in_multi &&
           !cd_srv.tx && (!cd_srv.requirepass || c->authed) &&
           argv[1].p >= c->in.p && argv[1].p + argv[1].len <= c->in.p + c->in.len;
}

static void cd_get_run_flush(cd_client *c, cd_get_run *run)
{
    if (!run->n) return;
    cd_str_get_batch(c, run->n, run->keys);
    run->n = 0;
    cd_client_check_output(c);
}

static void cd_client_process(cd_client *c)
{
    cd_get_run run;
    run.n = 0;
    while (!c->closed && !c->close_after && c->in_start < c->in.len) {
        size_t used = 0;
        int unauth = cd_srv.requirepass && !c->authed;
        int rc = cd_req_parse(&c->req, c->in.p + c->in_start, c->in.len - c->in_start, unauth, &used);
        if (rc == CD_REQ_DONE && cd_get_joins_run(c, (int)c->req.argc, c->req.argv)) {
            c->last_ms = cd_srv.round_ms;
            c->last_cmd = "get";
            cd_srv.stat_cmds++;
            run.keys[run.n++] = c->req.argv[1];
            c->in_start += used;
            cd_req_reset(&c->req);
            if (run.n == CD_GET_RUN) cd_get_run_flush(c, &run);
            continue;
        }
        cd_get_run_flush(c, &run);
        if (rc == CD_REQ_MORE) break;
        if (rc == CD_REQ_ERROR) {
            cd_log(CD_LOG_VERBOSE, "Protocol error (%s) from client: id=%llu addr=%s", c->req.err,
                   (unsigned long long)c->id, c->addr);
            cd_reply_err(c, c->req.err);
            c->close_after = 1;
            c->in_start = c->in.len;
            break;
        }
        if (rc == CD_REQ_NOMEM) {
            cd_log(CD_LOG_WARNING, "client %s: out of memory parsing a request; closing it", c->addr);
            cd_client_kill(c);
            break;
        }
        cd_cmd_dispatch(c, (int)c->req.argc, c->req.argv);
        if (c->closed) break; /* killed by its own command (SHUTDOWN, CLIENT KILL) */
        c->in_start += used;
        cd_req_reset(&c->req);
        cd_client_check_output(c);
    }
    cd_get_run_flush(c, &run);
    cd_client_mark_pending(c);
}

static void cd_client_read(cd_client *c)
{
    /* Drop the bytes already run before reading more. */
    if (c->in_start > 0) {
        memmove(c->in.p, c->in.p + c->in_start, c->in.len - c->in_start);
        c->in.len -= c->in_start;
        c->in_start = 0;
    }
    /* For a big bulk, read more at a time, but let the buffer grow only by
     * doubling as bytes arrive: a header announcing 512 MB costs nothing
     * until the bytes are actually sent. */
    size_t want = CD_READ_CHUNK;
    size_t total = cd_req_wants(&c->req);
    if (total > c->in.len + want) {
        want = total - c->in.len;
        size_t step = c->in.len > CD_READ_CHUNK ? c->in.len : CD_READ_CHUNK;
        if (want > step) want = step;
    }
    if (cd_buf_reserve(&c->in, want) < 0) {
        cd_log(CD_LOG_WARNING, "client %s: out of memory for its query buffer; closing it", c->addr);
        cd_client_kill(c);
        return;
    }
    ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
    if (n == 0) {
        cd_log(CD_LOG_DEBUG, "client %s closed the connection", c->addr);
        cd_client_kill(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        cd_log(CD_LOG_VERBOSE, "client %s: read error: %s", c->addr, strerror(errno));
        cd_client_kill(c);
        return;
    }
    c->in.len += (size_t)n;
    cd_srv.stat_net_in += (uint64_t)n;
    if (c->close_after) { /* after QUIT or a protocol error: input is dropped */
        c->in.len = c->in_start;
        return;
    }
    cd_client_process(c);
    /* an idle client does not keep a big query buffer */
    if (c->in_start == c->in.len && c->in.cap > 256 * 1024) {
        cd_buf_free(&c->in);
        c->in_start = 0;
    }
}

static void cd_addr_string(const struct sockaddr_storage *sa, char *out, size_t n, int *local)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) /* an IPv4 peer of a dual-stack socket */
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, sizeof ip);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
    }
    /* Redis's islocalClient: exactly these two addresses */
    if (local) *local = !strcmp(ip, "127.0.0.1") || !strcmp(ip, "::1");
    snprintf(out, n, "%s:%d", ip, port);
}

static void cd_refuse(int fd, const char *msg)
{
    if (write(fd, msg, strlen(msg)) < 0) { /* closing anyway */ }
    close(fd);
    cd_srv.stat_rejected++;
}

static void cd_accept(void)
{
    for (int i = 0; i < 1000; i++) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        int fd = accept4(cd_srv.lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                cd_log(CD_LOG_WARNING, "Accepting client connection: %s", strerror(errno));
            return;
        }
        char addr[64];
        int local = 0;
        cd_addr_string(&sa, addr, sizeof addr, &local);
        if (cd_srv.nclients >= cd_srv.maxclients) {
            cd_refuse(fd, "-ERR max number of clients reached\r\n");
            continue;
        }
        if (cd_srv.protected_mode && !cd_srv.requirepass && !local) {
            cd_log(CD_LOG_VERBOSE, "refused %s: protected mode", addr);
            cd_refuse(fd, cd_denied);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        cd_client *c = calloc(1, sizeof *c);
        if (!c) {
            cd_refuse(fd, "-ERR out of memory\r\n");
            continue;
        }
        c->fd = fd;
        c->id = ++cd_srv.next_client_id;
        c->proto = 2;
        c->authed = cd_srv.requirepass == NULL;
        c->ctime_ms = c->last_ms = cd_now_ms();
        c->req.bulk_len = -1;
        snprintf(c->addr, sizeof c->addr, "%s", addr);
        len = sizeof sa;
        if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
            cd_addr_string(&sa, c->laddr, sizeof c->laddr, NULL);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(cd_srv.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            cd_log(CD_LOG_WARNING, "epoll_ctl: %s", strerror(errno));
            close(fd);
            free(c);
            continue;
        }
        c->next = cd_srv.clients;
        if (c->next) c->next->prev = c;
        cd_srv.clients = c;
        cd_srv.nclients++;
        cd_srv.stat_conns++;
        cd_log(CD_LOG_DEBUG, "Accepted %s", addr);
    }
}

static int cd_listen(void)
{
    struct addrinfo hints = { 0 }, *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cd_srv.port);
    hints.ai_family = cd_srv.bind_any ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(cd_srv.bind_any ? NULL : cd_srv.bind_host, port, &hints, &res);
    if (rc != 0) {
        cd_log(CD_LOG_WARNING, "Could not resolve the bind address '%s': %s", cd_srv.bind_host,
               gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && cd_srv.bind_any) { /* no IPv6: every IPv4 interface */
        freeaddrinfo(res);
        hints.ai_family = AF_INET;
        if (getaddrinfo(NULL, port, &hints, &res) != 0) return -1;
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    int one = 1, zero = 0;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (res->ai_family == AF_INET6 && cd_srv.bind_any)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); /* IPv4 too */
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 511) < 0) {
        cd_log(CD_LOG_WARNING, "Could not create server TCP listening socket %s:%d: %s",
               cd_srv.bind_any ? "*" : cd_srv.bind_host, cd_srv.port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    cd_srv.lfd = fd;
    return 0;
}

/* SIGINT, SIGTERM and SIGHUP arrive through a signalfd, read by the
 * loop like any event. They must be blocked in every thread, so main
 * calls this before anything starts a thread (the engine starts its own
 * in calypso_open, and they inherit the mask). */
int cd_signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

static int cd_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void cd_on_signal(int sfd)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            if (cd_log_open() < 0) cd_log(CD_LOG_WARNING, "could not reopen the log file");
            else cd_log(CD_LOG_NOTICE, "SIGHUP: log reopened");
        } else {
            cd_log(CD_LOG_WARNING, "Received %s scheduling shutdown...",
                   si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
            cd_srv.shutdown = 1;
        }
    }
}

/* The end of a round. Under --sync always, one calypso_sync covers the
 * writes of every client in the round before any of their replies is
 * released (Redis's appendfsync always does the same in beforeSleep);
 * requests that arrive meanwhile wait in the sockets and form the next
 * round's group. Measured on this machine, this beat handing the sync to
 * a thread of its own (about twice the SETs per second with 50 clients),
 * whose handoffs (condition variable, eventfd) cost more than the overlap
 * won. A failed sync is fatal, as in Redis: the replies it should
 * have covered are never sent, since the kernel may have dropped the
 * data. Then the replies are written. */
static void cd_round_end(void)
{
    if (cd_srv.sync_mode == CALYPSO_SYNC_ALWAYS && cd_srv.dirty) {
        cd_srv.dirty = 0;
        int rc = calypso_sync(cd_srv.db);
        if (rc < 0) {
            cd_log(CD_LOG_WARNING, "Can't sync the database with --sync always: %s (%s). Exiting; "
                   "the writes since the last sync were not acknowledged.", calypso_strerror(rc),
                   calypso_errmsg(cd_srv.db));
            exit(1);
        }
    }
    cd_client *c = cd_srv.pending;
    cd_srv.pending = NULL;
    while (c) {
        cd_client *next = c->pnext;
        c->pending = 0;
        c->pnext = NULL;
        if (!c->closed) {
            c->out_ready = c->out.len;
            cd_client_write(c);
        }
        c = next;
    }
    while (cd_freelist) {
        c = cd_freelist;
        cd_freelist = c->fnext;
        cd_client_free(c);
    }
}

int cd_loop_run(void)
{
    cd_srv.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (cd_srv.epfd < 0 || cd_listen() < 0) return -1;
    int sfd = cd_signals();
    if (sfd < 0) return -1;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cd_ev_listen };
    epoll_ctl(cd_srv.epfd, EPOLL_CTL_ADD, cd_srv.lfd, &ev);
    ev.data.ptr = &cd_ev_signal;
    epoll_ctl(cd_srv.epfd, EPOLL_CTL_ADD, sfd, &ev);
    cd_log(CD_LOG_NOTICE, "Ready to accept connections on %s:%d",
           cd_srv.bind_any ? "*" : cd_srv.bind_host, cd_srv.port);

    struct epoll_event evs[1024];
    while (!cd_srv.shutdown) {
        int n = epoll_wait(cd_srv.epfd, evs, 1024, 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            cd_log(CD_LOG_WARNING, "epoll_wait: %s", strerror(errno));
            return -1;
        }
        cd_srv.round_ms = cd_now_ms();
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &cd_ev_listen) { cd_accept(); continue; }
            if (p == &cd_ev_signal) { cd_on_signal(sfd); continue; }
            cd_client *c = p;
            if (c->closed) continue;
            if (evs[i].events & EPOLLOUT) cd_client_write(c);
            if (!c->closed && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) cd_client_read(c);
        }
        cd_round_end();
    }
    /* shutdown: the replies already made go out (best effort), then the
     * clients are closed */
    cd_round_end();
    while (cd_srv.clients) cd_client_free(cd_srv.clients);
    close(cd_srv.lfd);
    close(sfd);
    close(cd_srv.epfd);
    return 0;
}
