// The generation copies of a backend's matrices (generation_copy_bytes: repacked Q4_K/Q6_K rows,
// float rows in blocks) side by side in one mapping with huge pages asked for, each at the place
// reserved when its matrix was bound (so in the order the forward pass reads them).
//
// Why one mapping: a copy of its own (2 MiB-aligned, madvised) got huge pages only for its whole
// 2 MiB pieces; the tail of every matrix and the small K/V ones were in 4 KiB pages, where the
// hardware prefetchers stop at every page and each page costs a TLB walk (14 % of TinyLlama
// Q4_K_M's copies; its generation 3-5 % slower at one thread on Zen 4). Rounding each copy up to
// 2 MiB instead costs up to 2 MiB of memory a matrix (+39 % for TinyLlama). The mapping lives as
// long as the backend, the matrices point into it.
//
// A slot's memory is mapped by the first at() of a slot reserved since the last mapping, for all
// of them, and is committed only where written: a matrix that generation never reads (a model run
// by prompts alone, plumb ppl) costs address space, not memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace plumb::cpu {

class CopyArena {
 public:
  struct Slot {
    size_t mapping = 0;  // index into mappings_
    size_t offset = 0;   // 64-byte aligned
    size_t bytes = 0;
  };
  // Reserves `bytes` (0: an empty slot, for matrices without a copy).
  Slot reserve(size_t bytes);
  // The slot's memory, zeros until written; nullptr for an empty slot or where the system has no
  // address space left (the caller then reads the file's layout).
  uint8_t* at(const Slot& slot);

 private:
  struct Unmap {
    size_t bytes = 0;
    void operator()(uint8_t* p) const;
  };
  std::vector<std::unique_ptr<uint8_t, Unmap>> mappings_;
  std::vector<uint8_t*> bases_;  // each mapping's 2 MiB-aligned start
  size_t pending_ = 0;           // bytes reserved for the mapping not made yet
};

}  // namespace plumb::cpu
