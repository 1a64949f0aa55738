// What a file could not take yet, kept in memory in order and bounded: the
// events file and the fluentd buffer on a full or read-only disk
// (docs/behaviour.md, "Events").
//
// Items are held oldest first and put back to the file, in order, before
// anything newer (Drain). At most max_items items / max_bytes bytes are
// held; once that bound is reached nothing more is kept until every held
// item is written, so that what is lost is one contiguous seq range,
// reported once (TakeDropped). The trouble itself (the write error, since
// when) is kept here too, so that its owner says it once when it starts
// (Fail returns true) and once when it ends (Recovered).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

namespace warden {

template <typename T>
class HeldQueue {
 public:
  HeldQueue(std::size_t max_items, std::size_t max_bytes)
      : max_items_(max_items), max_bytes_(max_bytes) {}

  // Keeps `item` (of `bytes` bytes, numbered `seq`) for later. False when
  // it is not kept: the bound is reached, or items were already refused
  // and the held ones are not all written yet; it then counts as dropped.
  bool Hold(T item, std::size_t bytes, std::uint64_t seq) {
    if (dropping_count_ > 0 || items_.size() >= max_items_ || bytes_ + bytes > max_bytes_) {
      if (dropping_count_++ == 0) dropping_first_ = seq;
      dropping_last_ = seq;
      ++dropped_total_;
      return false;
    }
    bytes_ += bytes;
    items_.push_back(Entry{std::move(item), bytes});
    return true;
  }

  // Offers the held items, oldest first, to `put` (bool put(const T&)),
  // which returns false when the file does not take one; that item and
  // those after it stay. True when nothing is held any more.
  template <typename Put>
  bool Drain(Put&& put) {
    while (!items_.empty()) {
      if (!put(items_.front().item)) return false;
      bytes_ -= items_.front().bytes;
      items_.pop_front();
      if (!error_.empty()) ++written_late_;
    }
    return true;
  }

  struct Dropped {
    std::uint64_t count = 0, first_seq = 0, last_seq = 0;
  };
  // Once nothing is held: the range refused since the bound was reached,
  // if any, and the queue keeps items again.
  std::optional<Dropped> TakeDropped() {
    if (!items_.empty() || dropping_count_ == 0) return std::nullopt;
    Dropped d{dropping_count_, dropping_first_, dropping_last_};
    dropping_count_ = 0;
    return d;
  }

  // The file refused a write. True the first time since it last took one
  // (the moment to say so).
  bool Fail(std::string error, std::int64_t now_ms) {
    const bool first = error_.empty();
    if (first) since_ms_ = now_ms;
    error_ = error.empty() ? "write failed" : std::move(error);
    return first;
  }
  struct Recovery {
    std::int64_t failing_ms = 0;      // how long the file refused writes
    std::uint64_t written_late = 0;   // held items written since
  };
  // The file takes writes again: the trouble that ended, if there was one.
  std::optional<Recovery> Recovered(std::int64_t now_ms) {
    if (error_.empty()) return std::nullopt;
    Recovery r{now_ms - since_ms_, written_late_};
    error_.clear();
    since_ms_ = 0;
    written_late_ = 0;
    return r;
  }

  // Nothing held and nothing refused: a new item may go straight to the file.
  bool clear() const { return items_.empty() && dropping_count_ == 0; }
  bool dropping() const { return dropping_count_ > 0; }
  std::size_t size() const { return items_.size(); }
  std::size_t bytes() const { return bytes_; }
  const T& front() const { return items_.front().item; }
  const T& back() const { return items_.back().item; }
  const std::string& error() const { return error_; }   // "" while writes succeed
  std::int64_t since_ms() const { return since_ms_; }
  std::uint64_t dropped_total() const { return dropped_total_; }
  std::size_t max_items() const { return max_items_; }

 private:
  struct Entry {
    T item;
    std::size_t bytes;
  };
  std::size_t max_items_, max_bytes_;
  std::deque<Entry> items_;
  std::size_t bytes_ = 0;
  std::string error_;
  std::int64_t since_ms_ = 0;
  std::uint64_t written_late_ = 0;
  std::uint64_t dropping_count_ = 0, dropping_first_ = 0, dropping_last_ = 0;
  std::uint64_t dropped_total_ = 0;
};

}  // namespace warden
