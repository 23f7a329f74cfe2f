/*
 * test_os.c: the syscall table: wrappers behave like the calls they wrap,
 * and the fault injector fails exactly the call it was armed for.
 */
#include "testutil.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>

static void test_write_read_roundtrip(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = cy_os_open(path, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(cy_os_pwrite(fd, "hello world", 11, 0), 0);
    char buf[32] = {0};
    assert_int_equal(cy_os_pread(fd, buf, sizeof buf, 6), 5);
    assert_memory_equal(buf, "world", 5);
    uint64_t sz = 0;
    assert_int_equal(cy_os_fsize(fd, &sz), 0);
    assert_int_equal(sz, 11);
    assert_int_equal(cy_os_ftruncate(fd, 5), 0);
    assert_int_equal(cy_os_fsize(fd, &sz), 0);
    assert_int_equal(sz, 5);
    assert_int_equal(cy_os_fdatasync(fd), 0);
    assert_int_equal(cy_os_close(fd), 0);
    assert_int_equal(cy_os_sync_dir(dir), 0);
    assert_int_equal(cy_os_unlink(path), 0);
    assert_int_equal(cy_os_open(path, O_RDONLY, 0), -ENOENT);
    tu_rmrf(dir);
}

static void test_fail_nth_once_and_sticky(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = cy_os_open(path, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);

    cy_os_fail_at(CY_OS_PWRITE, 2, ENOSPC, 0, 0);
    assert_int_equal(cy_os_pwrite(fd, "a", 1, 0), 0);
    assert_int_equal(cy_os_pwrite(fd, "b", 1, 1), -ENOSPC);
    assert_int_equal(cy_os_pwrite(fd, "c", 1, 2), 0);      /* once only */
    assert_int_equal(cy_os_fdatasync(fd), 0);               /* other kinds untouched */

    cy_os_fail_at(CY_OS_ANY, 1, EIO, 1, 0);
    assert_int_equal(cy_os_fdatasync(fd), -EIO);
    assert_int_equal(cy_os_pwrite(fd, "d", 1, 3), -EIO);    /* sticky */
    cy_os_fail_reset();
    assert_int_equal(cy_os_pwrite(fd, "d", 1, 3), 0);

    /* A short write writes half, then fails. */
    cy_os_fail_at(CY_OS_PWRITE, 1, EIO, 0, 1);
    assert_int_equal(cy_os_pwrite(fd, "12345678", 8, 0), -EIO);
    char buf[8];
    assert_int_equal(cy_os_pread(fd, buf, 4, 0), 4);
    assert_memory_equal(buf, "1234", 4);
    cy_os_fail_reset();
    cy_os_close(fd);
    tu_rmrf(dir);
}

static void test_counts_and_flock(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    cy_os_count_reset();
    int a = cy_os_open(path, O_RDWR | O_CREAT, 0644);
    int b = cy_os_open(path, O_RDWR, 0644);
    assert_int_equal(cy_os_count(CY_OS_OPEN), 2);
    assert_int_equal(cy_os_flock(a, LOCK_EX | LOCK_NB), 0);
    assert_int_equal(cy_os_flock(b, LOCK_SH | LOCK_NB), -EWOULDBLOCK);
    assert_int_equal(cy_os_count(CY_OS_FLOCK), 2);
    assert_true(cy_os_count(CY_OS_ANY) >= 4);
    cy_os_close(a);
    assert_int_equal(cy_os_flock(b, LOCK_SH | LOCK_NB), 0);
    cy_os_close(b);
    tu_rmrf(dir);
}

static int count_entry(const char *name, void *ctx)
{
    (void)name;
    (*(int *)ctx)++;
    return 0;
}

static void test_list_dir_and_mmap(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[512];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/f%d", dir, i);
        int fd = cy_os_open(path, O_RDWR | O_CREAT, 0644);
        assert_true(fd >= 0);
        assert_int_equal(cy_os_pwrite(fd, "xyz", 3, 0), 0);
        if (i == 2) {
            void *m = NULL;
            assert_int_equal(cy_os_mmap(fd, 3, &m), 0);
            assert_memory_equal(m, "xyz", 3);
            cy_os_munmap(m, 3);
        }
        cy_os_close(fd);
    }
    int n = 0;
    assert_int_equal(cy_os_list_dir(dir, count_entry, &n), 0);
    assert_int_equal(n, 3);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read_roundtrip),
        cmocka_unit_test(test_fail_nth_once_and_sticky),
        cmocka_unit_test(test_counts_and_flock),
        cmocka_unit_test(test_list_dir_and_mmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
