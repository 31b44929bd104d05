// The agenda shared by the SentencePiece and BPE merge loops: candidate pairs of adjacent
// symbols, best first. make(left, right, &bigram) says whether two symbols can merge and fills
// the candidate; Order ranks candidates as std::priority_queue expects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

namespace plumb::tok {

template <class Bigram, class Order, class Make>
class BigramQueue {
 public:
  // Queues every mergeable pair (i - 1, i) of n_symbols symbols, heapified at once (linear time)
  // rather than pushed one by one.
  BigramQueue(int32_t n_symbols, Make make) : make_(std::move(make)) {
    std::vector<Bigram> initial;
    initial.reserve(static_cast<size_t>(n_symbols));
    for (int32_t i = 1; i < n_symbols; ++i) {
      Bigram bigram;
      if (make_(i - 1, i, &bigram)) initial.push_back(bigram);
    }
    queue_ = std::priority_queue<Bigram, std::vector<Bigram>, Order>(Order{}, std::move(initial));
  }

  // Queues (left, right) when they can merge; negative indices (no neighbour) are ignored by make.
  void try_add(int32_t left, int32_t right) {
    Bigram bigram;
    if (make_(left, right, &bigram)) queue_.push(bigram);
  }

  bool empty() const { return queue_.empty(); }

  Bigram pop() {
    Bigram top = queue_.top();
    queue_.pop();
    return top;
  }

 private:
  Make make_;
  std::priority_queue<Bigram, std::vector<Bigram>, Order> queue_;
};

}  // namespace plumb::tok
