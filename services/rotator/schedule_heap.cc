#include "services/rotator/schedule_heap.h"

#include <algorithm>

namespace coffer::rotator {

void ScheduleHeap::Set(const std::string& name, absl::Time due, uint64_t tag) {
  auto [it, inserted] = slots_.try_emplace(name);
  Slot& slot = it->second;
  slot.tag = tag;
  if (!inserted) {
    if (slot.due == due) return;  // its node is still right
    live_.erase(slot.generation);
  }
  slot.generation = next_generation_++;
  slot.due = due;
  live_.emplace(slot.generation, &it->first);
  nodes_.push_back(Node{due, slot.generation});
  std::push_heap(nodes_.begin(), nodes_.end(), Later);
  CompactIfMostlyStale();
}

bool ScheduleHeap::Remove(const std::string& name) {
  auto it = slots_.find(name);
  if (it == slots_.end()) return false;
  live_.erase(it->second.generation);
  slots_.erase(it);
  CompactIfMostlyStale();
  return true;
}

std::optional<absl::Time> ScheduleHeap::DueOf(const std::string& name) const {
  auto it = slots_.find(name);
  if (it == slots_.end()) return std::nullopt;
  return it->second.due;
}

void ScheduleHeap::DropStaleTop() {
  while (!nodes_.empty() && !IsLive(nodes_.front())) {
    std::pop_heap(nodes_.begin(), nodes_.end(), Later);
    nodes_.pop_back();
  }
}

void ScheduleHeap::CompactIfMostlyStale() {
  if (nodes_.size() <= 2 * slots_.size() + 1024) return;
  std::vector<Node> live_nodes;
  live_nodes.reserve(slots_.size());
  for (const auto& [name, slot] : slots_) live_nodes.push_back(Node{slot.due, slot.generation});
  std::make_heap(live_nodes.begin(), live_nodes.end(), Later);
  nodes_.swap(live_nodes);
}

std::optional<ScheduleHeap::Entry> ScheduleHeap::Top() {
  DropStaleTop();
  if (nodes_.empty()) return std::nullopt;
  return Entry{*live_.at(nodes_.front().generation), nodes_.front().due};
}

std::optional<ScheduleHeap::Entry> ScheduleHeap::Pop() {
  auto top = Top();
  if (!top) return std::nullopt;
  std::pop_heap(nodes_.begin(), nodes_.end(), Later);
  nodes_.pop_back();
  Remove(top->name);
  return top;
}

std::optional<ScheduleHeap::Entry> ScheduleHeap::PopDue(absl::Time now) {
  auto top = Top();
  if (!top || top->due > now) return std::nullopt;
  return Pop();
}

size_t ScheduleHeap::CountDueBefore(absl::Time t) const {
  // Depth-first over the heap array: a node's children are never earlier
  // than it, so a subtree whose root is not before `t` is skipped whole.
  size_t count = 0;
  std::vector<size_t> stack;
  if (!nodes_.empty()) stack.push_back(0);
  while (!stack.empty()) {
    size_t i = stack.back();
    stack.pop_back();
    if (!(nodes_[i].due < t)) continue;
    if (IsLive(nodes_[i])) ++count;
    for (size_t child : {2 * i + 1, 2 * i + 2}) {
      if (child < nodes_.size()) stack.push_back(child);
    }
  }
  return count;
}

}  // namespace coffer::rotator
