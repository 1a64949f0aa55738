// Named values read in one go, and the names a reader asks for.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warden {

// A snapshot of named values (SHOW GLOBAL STATUS, SHOW GLOBAL VARIABLES):
// name -> value, read-only once built. A snapshot is taken for every
// shared read and read by the checks due with it, so building one does no
// work per row beyond keeping it: it holds the reader's result as it is
// (the client library's stored result: no copy, no lower-casing, no sort),
// and a name is compared only when a check asks for it. A check keeps a
// Hint (where its name was), so its lookup in the next snapshot is one
// comparison of its name with that row's, not a search. Names are matched
// case-insensitively against a lower-case key; of several rows with the
// same name, the last.
class NamedValues {
 public:
  // A row: its name as the server sent it, and its value ("" for NULL).
  using value_type = std::pair<std::string_view, std::string_view>;

  NamedValues() = default;
  // The rows point into what the map keeps: moving keeps them valid.
  NamedValues(NamedValues&&) = default;
  NamedValues& operator=(NamedValues&&) = default;
  NamedValues(const NamedValues&) = delete;
  NamedValues& operator=(const NamedValues&) = delete;

  // The value of `key` (lower case: "threads_running"), or nullopt.
  std::optional<std::string_view> get(std::string_view key) const;
  // Where a name was found and how the server spelt it, for finding it
  // again in a later snapshot (one strcmp): a caller that looks up one
  // name in every snapshot keeps one. The spelling is kept in place (56
  // bytes in all, no allocation: the hint is read with whatever holds it,
  // in one cache line). A name longer than kMaxName (none in SHOW GLOBAL
  // STATUS, a few in SHOW GLOBAL VARIABLES) keeps only its row, which is
  // then compared with the key case-insensitively.
  struct Hint {
    static constexpr size_t kMaxName = 51;
    std::uint32_t index = UINT32_MAX;
    char name[kMaxName + 1] = {};   // "" when not kept
  };
  // The same as get(key) (the caller keeps `key` the same for a hint),
  // trying the hint's row first and updating the hint. `key` is read only
  // when the hint's row is not the name (or it is too long to be kept):
  // the usual lookup touches the hint and the snapshot, not the key.
  std::optional<std::string_view> get(const std::string& key, Hint* hint) const;
  size_t count(std::string_view key) const { return get(key) ? 1 : 0; }
  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  // Row `i` in the server's order.
  value_type row(size_t i) const;
  // When the snapshot reached the loop (set by the reader before sharing
  // it): the time of every value in it, for rates and check results.
  std::chrono::steady_clock::time_point taken{};

  // Building (before the map is shared). AddRow: a row whose text (NUL-
  // terminated; `value` may be null) lives as long as `keep`, which the
  // map holds from Keep on: the reader's stored result. Add: a copy of
  // the text, for rows that come from elsewhere.
  void Reserve(size_t rows) { rows_.reserve(rows); }
  void AddRow(const char* name, const char* value) { rows_.push_back({name, value}); }
  void Keep(std::shared_ptr<const void> keep) { keep_.push_back(std::move(keep)); }
  void Add(std::string_view name, std::string_view value);

 private:
  // Whether a row's name is `key` but for case.
  static bool NameIs(const char* name, std::string_view key);
  std::string_view Value(size_t i) const;   // "" for NULL

  struct Row {
    const char* name;
    const char* value;   // null for NULL
  };
  std::vector<Row> rows_;
  std::vector<std::shared_ptr<const void>> keep_;   // what rows_ point into
};

// The names a shared read asks for: lower case, sorted, without
// repeats. Made once for a set of checks and shared, immutable, with the
// reads that use it; `prepared` is what the reader made of it once (a
// statement), loop thread only.
struct NameSet {
  std::vector<std::string> names;
  mutable std::string prepared;

  // From any names: lower-cased, sorted, repeats dropped.
  static std::shared_ptr<const NameSet> Of(std::vector<std::string> names);
  // Whether a read of `have` holds every name of `want` (a null set is
  // every name: a full read).
  static bool Covers(const NameSet* have, const NameSet* want);
};

}  // namespace warden
