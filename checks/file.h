// type = file: facts about one path (stat on a worker, lane "file";
// symbolic links are followed).
//
//   metric = exists  (default) "1" or "0"
//          = age     seconds since the last modification (ms precision;
//                    negative when mtime is in the future)
//          = size    bytes
//
// For age and size a missing file is the error "no such file: PATH"; any
// other stat failure (permission) is an error for every metric.
#pragma once

#include "checks/check.h"

namespace warden {

extern const CheckType kFileCheckType;

}  // namespace warden
