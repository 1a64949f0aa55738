// What checks and actions may use while they run: the loop's services.
// Owned by the daemon; everything here lives on the loop thread.
#pragma once

#include <string>
#include <vector>

#include "daemon/base/time_source.h"

struct ev_loop;

namespace warden {

class WorkerPool;
class ProcessRunner;
class MysqlReads;
class HttpClient;

struct Runtime {
  struct ev_loop* loop = nullptr;
  WorkerPool* workers = nullptr;
  ProcessRunner* processes = nullptr;
  MysqlReads* mysql = nullptr;
  HttpClient* http = nullptr;    // libcurl on the loop (actions that post: alertmanager, webhook)
  std::string host;              // the host's id, as events name it
  std::string service_command;   // [daemon] service_command: the service action's argv prefix
  // When checks are due (Scheduler); tests put a FakeTime here.
  const TimeSource* time = &TimeSource::Real();
};

}  // namespace warden
