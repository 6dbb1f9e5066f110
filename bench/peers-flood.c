/* bench/peers.sh's UDP sender, for when the Python one (bench/peers.py flood) cannot outrun
 * the path: connected UDP sockets, 64 datagrams per sendmmsg() call, for a fixed time.
 * usage: peers-flood SECONDS PORT SOURCES(comma-separated) TARGETS(comma-separated) PROCS FLOWS
 * Forks PROCS senders of FLOWS sockets each (source and target taken round robin) and prints
 * {"sent": N, "seconds": S}. bench/peers.sh compiles it with cc at run time. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXLIST 16

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int split(char *s, char **out) { /* comma-separated list, in place */
  int n = 0;
  for (char *tok = strtok(s, ","); tok && n < MAXLIST; tok = strtok(NULL, ",")) out[n++] = tok;
  return n;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s SECONDS PORT SOURCES TARGETS PROCS FLOWS\n", argv[0]);
    return 2;
  }
  double seconds = atof(argv[1]);
  int port = atoi(argv[2]), procs = atoi(argv[5]), flows = atoi(argv[6]);
  char *src[MAXLIST], *dst[MAXLIST];
  int nsrc = split(argv[3], src), ndst = split(argv[4], dst);
  if (nsrc == 0 || ndst == 0 || procs < 1 || flows < 1 || flows > 256) return 2;
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  double start = now(), deadline = start + seconds;
  for (int p = 0; p < procs; p++) {
    if (fork() != 0) continue;
    int fds[256];
    for (int i = 0; i < flows; i++) {
      int k = p * flows + i;
      struct sockaddr_in a = {.sin_family = AF_INET};
      fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
      inet_pton(AF_INET, src[k % nsrc], &a.sin_addr);
      if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0) _exit(1);
      a.sin_port = htons(port);
      inet_pton(AF_INET, dst[k % ndst], &a.sin_addr);
      if (connect(fds[i], (struct sockaddr *)&a, sizeof a) != 0) _exit(1);
    }
    static char payload[] = "sluice-peers-bench"; /* 18 bytes: 64-byte frames */
    struct iovec iov = {.iov_base = payload, .iov_len = sizeof payload - 1};
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
      msgs[i].msg_hdr.msg_iov = &iov;
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    long long sent = 0;
    while (now() < deadline)
      for (int i = 0; i < flows; i++) {
        int n = sendmmsg(fds[i], msgs, BATCH, MSG_DONTWAIT);
        if (n > 0) sent += n; /* a full queue (EAGAIN/ENOBUFS): go on with the next socket */
      }
    if (write(pipefd[1], &sent, sizeof sent) != sizeof sent) _exit(1);
    _exit(0);
  }
  close(pipefd[1]); /* a sender that dies without a count ends the read below */
  long long total = 0, one;
  for (int p = 0; p < procs; p++) {
    if (read(pipefd[0], &one, sizeof one) != sizeof one) return 1;
    total += one;
  }
  int status, bad = 0;
  while (wait(&status) > 0) bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  printf("{\"sent\": %lld, \"seconds\": %.3f}\n", total, now() - start);
  return bad;
}
