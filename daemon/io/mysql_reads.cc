// MysqlReads, what checks and actions call on the loop thread: worker
// jobs for queries, statements, pings and replica status, and the shared
// reads that serve every call asking within the share window from one
// snapshot.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/io/mysql.h"
#include "daemon/io/mysql_internal.h"
#include "daemon/io/mysql_loop_conn.h"
#include "daemon/io/worker_pool.h"

namespace warden {

namespace mysql_internal {
namespace {

std::string UnknownConnection(const std::string& name) {
  return name.empty() ? "no [mysql] section configured"
                      : "unknown mysql connection '" + name + "' (no [mysql " + name + "] section)";
}

// `start(names, callback)` starts a read of `names`, which calls
// `callback` on the loop once; it runs only when no read in flight or
// fresh enough holds every name asked for (NameSet::Covers).
template <typename T, typename Start>
void SharedReadOf(const std::shared_ptr<ReadsState>& impl,
                  std::map<std::string, SharedRead<T>>& table, const std::string& name,
                  Duration window, const std::shared_ptr<const NameSet>& names, Start&& start,
                  MysqlReads::SharedDone<T> done) {
  // One lookup per run: a table has entries for known connections only.
  auto it = table.find(name);
  if (it == table.end()) {
    if (!impl->Find(name)) {
      done(Status::NotFound(UnknownConnection(name)));
      return;
    }
    it = table.try_emplace(name).first;
  }
  SharedRead<T>* shared = &it->second;
  for (auto& flight : shared->flights) {
    if (NameSet::Covers(flight.names.get(), names.get())) {
      flight.waiters.push_back(std::move(done));
      return;
    }
  }
  // Served from the last read while it is younger than 90% of the window:
  // checks on the next 100 ms tick of the run grid get a fresh one even
  // when the tick's timer fires a millisecond early (docs/behaviour.md, "Sharing window": checks due
  // within the same window share a read, not those of the next one).
  Clock::time_point now = Clock::now();
  if (shared->last && now - shared->started < window * 9 / 10 &&
      NameSet::Covers(shared->last_names.get(), names.get())) {
    done(*shared->last);
    return;
  }
  auto flight = shared->flights.emplace(shared->flights.end());
  flight->names = names;
  flight->started = now;
  flight->waiters.swap(shared->spare);   // its capacity
  flight->waiters.clear();
  flight->waiters.push_back(std::move(done));
  start(names, [shared, flight](Expected<std::shared_ptr<const T>> r) {
    // The waiters get this copy: `last` may be replaced while they run
    // (one asks again, the read is stale, the next one fails at once).
    const Expected<std::shared_ptr<const T>> result = std::move(r);
    shared->last = result;
    shared->last_names = std::move(flight->names);
    shared->started = flight->started;
    // A waiter may ask again from inside its callback: it is then served
    // from `last` or a flight of its own, not added to the list being
    // walked.
    auto waiters = std::move(flight->waiters);
    shared->flights.erase(flight);
    for (auto& w : waiters) w(result);
    waiters.clear();
    shared->spare = std::move(waiters);
  });
}

}  // namespace
}  // namespace mysql_internal

using mysql_internal::LoopDone;
using mysql_internal::ReadNamed;
using mysql_internal::SharedReadOf;
using mysql_internal::SubmitWork;
using mysql_internal::UnknownConnection;

struct MysqlReads::Impl : mysql_internal::ReadsState {
  using ReadsState::ReadsState;
};


MysqlReads::MysqlReads(WorkerPool& workers, std::map<std::string, MysqlConnConfig> connections)
    : impl_(std::make_shared<Impl>(workers, std::move(connections))) {
  // Before any worker thread uses the client library.
  mysql_internal::InitLibrary();
}

const MysqlConnConfig* MysqlReads::Find(const std::string& connection) const {
  return impl_->Find(connection);
}

void MysqlReads::Query(const std::string& connection, const std::string& sql,
                       std::function<void(Expected<MysqlRows>)> done) {
  auto cfg = impl_->Shared(connection);
  if (!cfg) {
    done(Status::NotFound(UnknownConnection(connection)));
    return;
  }
  SubmitWork<MysqlRows>(
      impl_, connection, std::move(cfg),
      [sql](const MysqlConnConfig& c) { return mysql_internal::WorkerQuery(c, sql); },
      std::move(done));
}

void MysqlReads::Execute(const std::string& connection, std::vector<std::string> statements,
                         std::function<void(Status)> done,
                         std::shared_ptr<MysqlStatementControl> control) {
  auto cfg = impl_->Shared(connection);
  if (!cfg) {
    done(Status::NotFound(UnknownConnection(connection)));
    return;
  }
  SubmitWork<bool>(
      impl_, connection, std::move(cfg),
      [statements = std::move(statements), control](const MysqlConnConfig& c) {
        return mysql_internal::WorkerExecute(c, statements, control.get());
      },
      [done = std::move(done)](Expected<bool> r) { done(r.status()); });
}

void MysqlReads::KillQuery(const std::string& connection,
                           std::shared_ptr<MysqlStatementControl> control,
                           std::function<void(Status)> done) {
  control->stop = true;
  auto cfg = impl_->Shared(connection);
  if (!cfg) {
    done(Status::NotFound(UnknownConnection(connection)));
    return;
  }
  if (control->connection_id == 0) {   // not started yet, or over: stop is enough
    done(Status::Ok());
    return;
  }
  SubmitWork<bool>(
      impl_, "kill:" + connection, std::move(cfg),
      [control](const MysqlConnConfig& c) {
        return mysql_internal::WorkerKillQuery(c, *control);
      },
      [done = std::move(done)](Expected<bool> r) { done(r.status()); });
}

void MysqlReads::Ping(const std::string& connection, std::function<void(Expected<double>)> done) {
  auto cfg = impl_->Shared(connection);
  if (!cfg) {
    done(Status::NotFound(UnknownConnection(connection)));
    return;
  }
  SubmitWork<double>(impl_, connection, std::move(cfg), mysql_internal::WorkerPing, std::move(done));
}

bool MysqlReads::Busy() const { return impl_->Busy(); }

void MysqlReads::GlobalStatus(const std::string& connection,
                              std::shared_ptr<const NameSet> names, SharedDone<MysqlMap> done) {
  SharedReadOf<MysqlMap>(
      impl_, impl_->status, connection, share_window, names,
      [this, &connection](const std::shared_ptr<const NameSet>& n, LoopDone cb) {
        ReadNamed(impl_, connection, "STATUS", n, std::move(cb));
      },
      std::move(done));
}

void MysqlReads::GlobalVariables(const std::string& connection,
                                 std::shared_ptr<const NameSet> names, SharedDone<MysqlMap> done) {
  SharedReadOf<MysqlMap>(
      impl_, impl_->variables, connection, share_window, names,
      [this, &connection](const std::shared_ptr<const NameSet>& n, LoopDone cb) {
        ReadNamed(impl_, connection, "VARIABLES", n, std::move(cb));
      },
      std::move(done));
}

void MysqlReads::ReplicaStatus(const std::string& connection, SharedDone<MysqlRows> done) {
  SharedReadOf<MysqlRows>(
      impl_, impl_->replica, connection, share_window, nullptr,
      [this, &connection](const std::shared_ptr<const NameSet>&,
                          std::function<void(Expected<std::shared_ptr<const MysqlRows>>)> cb) {
        SubmitWork<std::shared_ptr<const MysqlRows>>(impl_, connection, impl_->Shared(connection),
                                                     mysql_internal::WorkerReplicaStatus, std::move(cb));
      },
      std::move(done));
}

}  // namespace warden
