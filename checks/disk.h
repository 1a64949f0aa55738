// type = disk: space or inodes left on the file system holding `path`
// (statvfs on a worker, lane "disk").
//
//   metric = free_pct         (default) percent of the blocks available to
//                             unprivileged users: f_bavail / f_blocks
//          = free_bytes       bytes available to unprivileged users
//          = inodes_free_pct  f_favail / f_files; an error on file systems
//                             that report no inode count (btrfs)
#pragma once

#include "checks/check.h"

namespace warden {

extern const CheckType kDiskCheckType;

}  // namespace warden
