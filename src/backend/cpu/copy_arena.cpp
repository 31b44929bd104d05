#include "backend/cpu/copy_arena.h"

#include <sys/mman.h>

namespace plumb::cpu {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}  // namespace

void CopyArena::Unmap::operator()(uint8_t* p) const { munmap(p, bytes); }

CopyArena::Slot CopyArena::reserve(size_t bytes) {
  const Slot slot{mappings_.size(), pending_, bytes};
  pending_ += (bytes + 63) / 64 * 64;
  return slot;
}

uint8_t* CopyArena::at(const Slot& slot) {
  if (slot.bytes == 0) return nullptr;
  if (slot.mapping == mappings_.size()) {
    // One huge page more than the slots, so that their start can be aligned to one.
    const size_t bytes = pending_ + kHugePage;
    void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return nullptr;
    mappings_.emplace_back(static_cast<uint8_t*>(map), Unmap{bytes});
    auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(map) + kHugePage - 1) / kHugePage * kHugePage);
    madvise(base, static_cast<size_t>(static_cast<uint8_t*>(map) + bytes - base), MADV_HUGEPAGE);  // a hint
    bases_.push_back(base);
    pending_ = 0;
  }
  return bases_[slot.mapping] + slot.offset;
}

}  // namespace plumb::cpu
