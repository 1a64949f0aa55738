// What checks and actions may use while they run: the loop's services.
// Owned by the daemon; everything here lives on the loop thread.
#pragma once

#include <string>
#include <vector>

#include "daemon/time_source.h"

struct ev_loop;

namespace warden {

class WorkerPool;
class ProcessRunner;
class MysqlReads;
class EventLog;
struct Config;

struct Runtime {
  struct ev_loop* loop = nullptr;
  WorkerPool* workers = nullptr;
  ProcessRunner* processes = nullptr;
  MysqlReads* mysql = nullptr;
  EventLog* events = nullptr;
  const Config* config = nullptr;
  // When checks are due (Scheduler); tests put a FakeTime here.
  const TimeSource* time = &TimeSource::Real();
};

}  // namespace warden
