#include "engine/ingest/idempotency_table.h"

#include <bit>
#include <cassert>

#include "engine/common/check.h"
#include "engine/types/mix.h"

namespace vouch {
namespace {

// Answer word layout: [63..16] seq or ticket | [15..8] reason | [7] held | [6..4] status |
// [1..0] state. A pending word carries the owner's ticket, so only that owner's CAS can
// finalise it, and never after the node was recycled for another ticket.
enum AnswerState : uint64_t { kPending = 0, kFinal = 1, kReleased = 2 };
constexpr uint64_t kStateMask = 0x3;
constexpr int kStatusShift = 4;
constexpr int kHeldShift = 7;
constexpr int kReasonShift = 8;
constexpr int kPayloadShift = 16;
static_assert(sizeof(Reason) == 1, "reason must fit in 8 bits");

uint64_t PendingWord(uint64_t ticket) { return ticket << kPayloadShift | kPending; }

uint64_t FinalWord(const StoredAnswer& answer) {
  // A truncated seq would answer a duplicate with another transaction's confirmation.
  VOUCH_CHECK(answer.seq < (uint64_t{1} << (64 - kPayloadShift)), "a seq fits the answer word");
  return answer.seq << kPayloadShift | uint64_t(answer.reason) << kReasonShift |
         uint64_t(answer.held) << kHeldShift | uint64_t(answer.status) << kStatusShift | kFinal;
}

// A node's stamp: its owner's ticket << 1, plus kWriting while a new owner writes its fields.
// Owner 0 (never a ticket) marks a node that was never used.
constexpr uint64_t kWriting = 1;
uint64_t StampOf(uint64_t ticket) { return ticket << 1; }

}  // namespace

StoredAnswer UnpackAnswer(uint64_t word, int64_t received_ns) {
  StoredAnswer answer;
  answer.status = static_cast<ConfirmStatus>((word >> kStatusShift) & 0x7);
  answer.held = (word >> kHeldShift) & 1;
  answer.reason = static_cast<Reason>((word >> kReasonShift) & 0xff);
  answer.seq = word >> kPayloadShift;
  answer.received_ns = received_ns;
  return answer;
}

struct IdempotencyTable::Node {
  std::atomic<uint64_t> stamp{0};  // StampOf(owner ticket), | kWriting while being rewritten.
  std::atomic<uint64_t> id{0};
  std::atomic<uint64_t> next{0};  // Ticket of the next older node in the chain; 0 ends it.
  std::atomic<uint64_t> answer{kReleased};
  std::atomic<int64_t> received_ns{0};
};

IdempotencyTable::IdempotencyTable(size_t window)
    : window_(std::bit_ceil(window < 2 ? size_t{2} : window)),
      node_mask_(window_ - 1),
      bucket_mask_(2 * window_ - 1),
      nodes_(new Node[window_]),
      buckets_(new std::atomic<uint64_t>[2 * window_]) {
  for (size_t i = 0; i < 2 * window_; ++i) {
    // relaxed: construction happens-before the table is shared.
    buckets_[i].store(0, std::memory_order_relaxed);
  }
}

IdempotencyTable::~IdempotencyTable() = default;

std::atomic<uint64_t>& IdempotencyTable::BucketFor(uint64_t id) const {
  return buckets_[Mix64(id) & bucket_mask_];  // Client ids are often sequential: spread them.
}

IdempotencyTable::Node& IdempotencyTable::NodeFor(uint64_t ticket) const {
  return nodes_[(ticket - 1) & node_mask_];
}

IdempotencyTable::Match IdempotencyTable::Walk(uint64_t id, uint64_t from, uint64_t until) const {
  for (uint64_t ticket = from; ticket != 0 && ticket != until;) {
    const Node& node = NodeFor(ticket);
    // acquire on every load keeps them in program order; see the class comment.
    if (node.stamp.load(std::memory_order_acquire) != StampOf(ticket)) break;  // Recycled.
    const uint64_t node_id = node.id.load(std::memory_order_acquire);
    const uint64_t next = node.next.load(std::memory_order_acquire);
    const uint64_t word = node.answer.load(std::memory_order_acquire);
    const int64_t received_ns = node.received_ns.load(std::memory_order_acquire);
    if (node.stamp.load(std::memory_order_acquire) != StampOf(ticket)) break;  // Torn.
    if (node_id == id && (word & kStateMask) != kReleased) return {true, word, received_ns};
    ticket = next;
  }
  return {};
}

// `stamp` was loaded (acquire) from `node`, so the owner's fields read here are its own or
// newer; a newer owner changes the stamp, and the caller's CAS from `stamp` then fails.
bool IdempotencyTable::OwnerGone(const Node& node, uint64_t stamp, uint64_t ticket) const {
  if ((stamp & kWriting) != 0) return false;  // Another claimer is writing it.
  if (stamp >= StampOf(ticket)) return false;  // A newer ticket owns it: this one was lapped.
  // acquire (both loads): see the class comment.
  if ((node.answer.load(std::memory_order_acquire) & kStateMask) == kPending) return false;
  const uint64_t next = node.next.load(std::memory_order_acquire);
  // A live successor would be hidden from walkers, which stop at the first recycled node.
  return next == 0 || NodeFor(next).stamp.load(std::memory_order_acquire) != StampOf(next);
}

uint64_t IdempotencyTable::TakeNode(uint64_t id, int64_t received_ns) {
  for (size_t attempt = 0; attempt < window_; ++attempt) {
    // relaxed: tickets only need to be unique; the node's own stamp orders its contents.
    const uint64_t ticket = last_ticket_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (claim_pause_for_test_) claim_pause_for_test_(ticket);
    Node& node = NodeFor(ticket);
    // acquire: see the previous owner's fields, which OwnerGone checks.
    uint64_t stamp = node.stamp.load(std::memory_order_acquire);
    if (!OwnerGone(node, stamp, ticket)) continue;
    // acquire on success: the owner's fields checked above were its last (the stamp is
    // unchanged); relaxed on failure: the next ticket is tried afresh. The writes below are
    // release stores, so a walker that reads one of them then sees kWriting.
    if (!node.stamp.compare_exchange_strong(stamp, StampOf(ticket) | kWriting,
                                            std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
      continue;
    }
    node.id.store(id, std::memory_order_release);
    node.answer.store(PendingWord(ticket), std::memory_order_release);
    node.received_ns.store(received_ns, std::memory_order_release);
    return ticket;
  }
  overruns_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic.
  return 0;
}

IdempotencyTable::Claim IdempotencyTable::ClaimId(uint64_t id, int64_t received_ns) {
  assert(id != 0);
  std::atomic<uint64_t>& bucket = BucketFor(id);
  // acquire: the nodes reachable from the head are fully linked.
  uint64_t head = bucket.load(std::memory_order_acquire);
  auto found = [](const Match& match) -> Claim {
    if ((match.answer_word & kStateMask) == kPending) return {ClaimKind::kInFlight, 0, {}};
    return {ClaimKind::kDuplicate, 0, UnpackAnswer(match.answer_word, match.received_ns)};
  };
  // Probe first: a duplicate or an in-flight retry takes no ticket.
  if (const Match match = Walk(id, head, 0); match.found) return found(match);
  const uint64_t ticket = TakeNode(id, received_ns);
  if (ticket == 0) return {ClaimKind::kFull, 0, {}};
  Node& node = NodeFor(ticket);
  uint64_t walked_until;  // Set before each CAS: from there down, the chain was searched.
  for (;;) {
    // release: a walker that acquires the stamp sees next and the fields above.
    node.next.store(head, std::memory_order_release);
    node.stamp.store(StampOf(ticket), std::memory_order_release);
    walked_until = head;
    // release: a walker that acquires the new head sees the node's fields and stamp.
    // acquire on failure: the newer nodes we must walk next are fully linked.
    if (bucket.compare_exchange_strong(head, ticket, std::memory_order_release,
                                       std::memory_order_acquire)) {
      return {ClaimKind::kNew, ticket, {}};
    }
    if (const Match match = Walk(id, head, walked_until); match.found) {
      // Our node is never linked: released, and linked to nothing, so it is recyclable.
      node.next.store(0, std::memory_order_release);
      node.answer.store(kReleased, std::memory_order_release);
      return found(match);
    }
  }
}

bool IdempotencyTable::Restore(uint64_t id, const StoredAnswer& answer) {
  assert(id != 0);
  const uint64_t ticket = TakeNode(id, answer.received_ns);
  if (ticket == 0) return false;
  Node& node = NodeFor(ticket);
  node.answer.store(FinalWord(answer), std::memory_order_relaxed);
  std::atomic<uint64_t>& bucket = BucketFor(id);
  // relaxed: no other thread uses the table during recovery; its start publishes it.
  node.next.store(bucket.load(std::memory_order_relaxed), std::memory_order_relaxed);
  node.stamp.store(StampOf(ticket), std::memory_order_relaxed);
  bucket.store(ticket, std::memory_order_relaxed);
  return true;
}

void IdempotencyTable::SetFinalWord(uint64_t ticket, uint64_t word) {
  uint64_t expected = PendingWord(ticket);
  // release: a reader that sees the final word sees nothing older than it; acquire not needed.
  const bool owned = NodeFor(ticket).answer.compare_exchange_strong(
      expected, word, std::memory_order_release, std::memory_order_relaxed);
  // A pending node is never recycled, so only a second answer for one claim can fail here.
  VOUCH_CHECK(owned, "an idempotency claim is answered once, by its owner");
}

void IdempotencyTable::Record(uint64_t ticket, const StoredAnswer& answer) {
  SetFinalWord(ticket, FinalWord(answer));
}

void IdempotencyTable::Release(uint64_t ticket) { SetFinalWord(ticket, kReleased); }

std::optional<StoredAnswer> IdempotencyTable::Find(uint64_t id) const {
  const uint64_t head = BucketFor(id).load(std::memory_order_acquire);  // acquire: see ClaimId.
  const Match match = Walk(id, head, 0);
  if (!match.found || (match.answer_word & kStateMask) != kFinal) return std::nullopt;
  return UnpackAnswer(match.answer_word, match.received_ns);
}

}  // namespace vouch
