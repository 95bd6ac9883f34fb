/* finit_module FILE [PARAMS]: loads one kernel module through finit_module(2), the way
 * kmod does, so the kernel itself reads the file. A compressed module (.xz, .gz, .zst) is
 * passed with MODULE_INIT_COMPRESSED_FILE, so the kernel decompresses it
 * (CONFIG_MODULE_DECOMPRESS) and checks its appended signature.
 * Built static by boot.sh and copied into the test initramfs; prints one result line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s FILE [PARAMS]\n", argv[0]);
    return 2;
  }
  const char *file = argv[1];
  const char *params = argc == 3 ? argv[2] : "";
  int flags = ends_with(file, ".xz") || ends_with(file, ".gz") || ends_with(file, ".zst")
                  ? MODULE_INIT_COMPRESSED_FILE
                  : 0;
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    printf("finit_module: %s: open: %s\n", file, strerror(errno));
    return 1;
  }
  if (syscall(SYS_finit_module, fd, params, flags) != 0) {
    int e = errno;
    printf("finit_module: %s (flags %d): failed: %s (errno %d)\n", file, flags, strerror(e), e);
    return 1;
  }
  printf("finit_module: %s (flags %d): loaded\n", file, flags);
  return 0;
}
