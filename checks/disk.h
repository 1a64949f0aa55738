// type = disk: space or inodes left on the file system holding `path`
// (statvfs on a worker, lane "disk").
//
//   metric = free_pct         (default) the free space in percent as df and
//                             check_disk count it: f_bavail / (used +
//                             f_bavail), used = f_blocks - f_bfree; the
//                             root reserve (f_bfree - f_bavail) is in
//                             neither part (DiskFreePct)
//          = free_bytes       bytes available to unprivileged users
//          = inodes_free_pct  f_favail / f_files; an error on file systems
//                             that report no inode count (btrfs)
#pragma once

#include <sys/statvfs.h>

#include <optional>

#include "checks/check.h"

namespace warden {

extern const CheckType kDiskCheckType;

// free_pct of a statvfs answer, rounded to 2 decimals: 100 at an empty
// file system, 0 when an unprivileged writer (mysqld) can write nothing
// more, 100 - df's Use% (which df rounds up). None for a file system that
// reports no size.
std::optional<double> DiskFreePct(const struct statvfs& fs);

}  // namespace warden
