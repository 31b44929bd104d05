// CopyArena (the generation copies side by side in huge-page mappings): slots 64-byte aligned,
// disjoint, zeros until written, the first one on a huge-page boundary; slots reserved after a
// mapping was made get a mapping of their own; empty slots have no memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/cpu/copy_arena.h"

namespace plumb::cpu {
namespace {

TEST(CopyArena, SlotsAreAlignedDisjointAndZero) {
  CopyArena arena;
  const std::vector<size_t> sizes = {2336 * 7, 1, 0, 3392 * 5 + 3, 3 << 20, 64};
  std::vector<CopyArena::Slot> slots;
  for (size_t b : sizes) slots.push_back(arena.reserve(b));
  std::vector<uint8_t*> mem;
  for (const auto& s : slots) mem.push_back(arena.at(s));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(mem[0]) % (2 << 20), 0u);
  EXPECT_EQ(mem[2], nullptr);
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0) continue;
    ASSERT_NE(mem[i], nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(mem[i]) % 64, 0u) << i;
    EXPECT_TRUE(std::all_of(mem[i], mem[i] + sizes[i], [](uint8_t v) { return v == 0; })) << i;
  }
  // Each slot filled with its index: none overwrites another.
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] != 0) std::memset(mem[i], static_cast<int>(i + 1), sizes[i]);
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0) continue;
    EXPECT_TRUE(std::all_of(mem[i], mem[i] + sizes[i], [&](uint8_t v) { return v == i + 1; })) << i;
  }
}

TEST(CopyArena, SlotsReservedLaterGetAMappingOfTheirOwn) {
  CopyArena arena;
  const CopyArena::Slot a = arena.reserve(1000);
  uint8_t* pa = arena.at(a);
  ASSERT_NE(pa, nullptr);
  std::memset(pa, 7, 1000);
  const CopyArena::Slot b = arena.reserve(5000), c = arena.reserve(100);
  uint8_t* pb = arena.at(b);
  uint8_t* pc = arena.at(c);
  ASSERT_NE(pb, nullptr);
  ASSERT_NE(pc, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pb) % (2 << 20), 0u);
  EXPECT_EQ(pc, pb + 5056);  // 5000 rounded up to a cache line
  EXPECT_EQ(arena.at(a), pa);
  EXPECT_TRUE(std::all_of(pa, pa + 1000, [](uint8_t v) { return v == 7; }));
  EXPECT_TRUE(std::all_of(pb, pb + 5000, [](uint8_t v) { return v == 0; }));
}

}  // namespace
}  // namespace plumb::cpu
