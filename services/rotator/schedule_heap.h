// schedule_heap.h: the rotator's in-memory schedule — when each
// rotation-enabled secret is next due — as a min-heap with lazy
// invalidation, so that "what is due next" costs O(log n) and nothing is
// spent per idle secret (performance.md: 1,000,000 secrets, idle CPU ~ 0).
//
//   ScheduleHeap heap;
//   heap.Set("db/main", now + absl::Hours(4));   // insert or move: O(log n)
//   heap.Remove("db/old");                        // O(1); its heap node goes stale
//   while (auto due = heap.PopDue(clock->Now())) Dispatch(due->name);
//
// Moving or removing a name does not search the heap: the name's slot gets
// a new generation and heap nodes whose generation is not the slot's are
// skipped (and dropped) when they reach the top. The heap is rebuilt when
// stale nodes outnumber live ones. Pure data structure: not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/time/time.h"

namespace coffer::rotator {

class ScheduleHeap {
 public:
  struct Entry {
    std::string name;
    absl::Time due;
  };

  // Inserts `name` or moves it to `due`. `tag` is an opaque number kept with
  // the entry (the rotator marks entries seen by a resync with it).
  void Set(const std::string& name, absl::Time due, uint64_t tag = 0);
  // False when `name` was not scheduled.
  bool Remove(const std::string& name);
  bool Contains(const std::string& name) const { return slots_.contains(name); }
  // When `name` is due, or nullopt.
  std::optional<absl::Time> DueOf(const std::string& name) const;

  // Live entries.
  size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }

  // The earliest live entry (drops stale nodes on the way), or nullopt.
  std::optional<Entry> Top();
  // Removes and returns the earliest live entry, or nullopt.
  std::optional<Entry> Pop();
  // Pop() when the earliest entry is due at or before `now`.
  std::optional<Entry> PopDue(absl::Time now);

  // Live entries due strictly before `t`. O(k) in the entries (live or
  // stale) due before `t`: only the top of the heap is visited.
  size_t CountDueBefore(absl::Time t) const;

  // Removes every entry whose tag is below `tag`, except those `keep`
  // says to keep; returns how many were removed. O(n).
  template <typename Keep>
  size_t RemoveTaggedBelow(uint64_t tag, Keep keep) {
    std::vector<std::string> doomed;
    for (const auto& [name, slot] : slots_) {
      if (slot.tag < tag && !keep(name)) doomed.push_back(name);
    }
    for (const auto& name : doomed) Remove(name);
    return doomed.size();
  }

  // Heap nodes including stale ones (for tests of the compaction).
  size_t node_count() const { return nodes_.size(); }

 private:
  struct Slot {
    uint64_t generation = 0;
    absl::Time due;
    uint64_t tag = 0;
  };
  struct Node {
    absl::Time due;
    uint64_t generation;
  };
  // std::push_heap builds a max-heap; "greater" puts the earliest on top
  // (ties: the older generation first, so equal times pop in insertion order).
  static bool Later(const Node& a, const Node& b) {
    return a.due > b.due || (a.due == b.due && a.generation > b.generation);
  }
  bool IsLive(const Node& node) const { return live_.contains(node.generation); }
  void DropStaleTop();
  void CompactIfMostlyStale();

  // name -> slot; node-based so that the key's address is stable and can be
  // referenced from live_ without a second copy of every name.
  absl::node_hash_map<std::string, Slot> slots_;
  // generation of every live slot -> its name (a key of slots_).
  absl::flat_hash_map<uint64_t, const std::string*> live_;
  std::vector<Node> nodes_;
  uint64_t next_generation_ = 1;
};

}  // namespace coffer::rotator
