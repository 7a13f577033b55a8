#include "engine/ingest/idempotency_table.h"

#include <bit>
#include <cassert>

#include "engine/common/check.h"
#include "engine/types/mix.h"

namespace vouch {
namespace {

// Answer word layout: [63..16] payload | [15..8] reason | [7] held | [6..4] status |
// [2] the payload is the owner's ticket (else a seq) | [1..0] state. Every word is unique to
// its owner: a pending or released word and a final refusal carry the owner's ticket, a final
// confirmation its seq. So a CAS from a word seen earlier fails if the node changed owner in
// between, whatever the new owner wrote (the commit point of recycling, see the class comment).
enum AnswerState : uint64_t { kPending = 0, kFinal = 1, kReleased = 2 };
constexpr uint64_t kStateMask = 0x3;
constexpr uint64_t kTicketPayload = 0x4;
constexpr int kStatusShift = 4;
constexpr int kHeldShift = 7;
constexpr int kReasonShift = 8;
constexpr int kPayloadShift = 16;
constexpr uint64_t kPayloadMax = uint64_t{1} << (64 - kPayloadShift);
static_assert(sizeof(Reason) == 1, "reason must fit in 8 bits");

uint64_t TicketWord(uint64_t ticket, AnswerState state) {
  // 2^48 claims is 89 years at 100k claims/s.
  assert(ticket < kPayloadMax);
  return ticket << kPayloadShift | kTicketPayload | state;
}
uint64_t PendingWord(uint64_t ticket) { return TicketWord(ticket, kPending); }
uint64_t ReleasedWord(uint64_t ticket) { return TicketWord(ticket, kReleased); }
uint64_t PayloadOf(uint64_t word) { return word >> kPayloadShift; }

uint64_t FinalWord(const StoredAnswer& answer, uint64_t ticket) {
  // A truncated seq would answer a duplicate with another transaction's confirmation.
  VOUCH_CHECK(answer.seq < kPayloadMax, "a seq fits the answer word");
  const uint64_t payload =
      answer.seq != 0 ? answer.seq << kPayloadShift : TicketWord(ticket, kFinal);
  return payload | uint64_t(answer.reason) << kReasonShift | uint64_t(answer.held) << kHeldShift |
         uint64_t(answer.status) << kStatusShift | kFinal;
}

// A node's stamp: its owner's ticket << 1, plus kWriting while a new owner writes its fields.
// Owner 0 (never a ticket) marks a node that was never used.
constexpr uint64_t kWriting = 1;
uint64_t StampOf(uint64_t ticket) { return ticket << 1; }

}  // namespace

StoredAnswer UnpackAnswer(uint64_t word, int64_t received_ns, uint64_t fingerprint) {
  StoredAnswer answer;
  answer.status = static_cast<ConfirmStatus>((word >> kStatusShift) & 0x7);
  answer.held = (word >> kHeldShift) & 1;
  answer.reason = static_cast<Reason>((word >> kReasonShift) & 0xff);
  answer.seq = (word & kTicketPayload) != 0 ? 0 : PayloadOf(word);
  answer.received_ns = received_ns;
  answer.fingerprint = fingerprint;
  return answer;
}

struct IdempotencyTable::Node {
  std::atomic<uint64_t> stamp{0};  // StampOf(owner ticket), | kWriting while being rewritten.
  std::atomic<uint64_t> id{0};
  std::atomic<uint64_t> next{0};  // Ticket of the next older node in the chain; 0 ends it.
  std::atomic<uint64_t> answer{ReleasedWord(0)};
  std::atomic<int64_t> received_ns{0};
  std::atomic<uint64_t> fingerprint{0};
};
static_assert(sizeof(std::atomic<uint64_t>) == 8, "64 bytes per remembered id (class comment)");

IdempotencyTable::IdempotencyTable(size_t capacity, int64_t retention_ns)
    : capacity_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity)),
      retention_ns_(retention_ns),
      node_mask_(capacity_ - 1),
      bucket_mask_(2 * capacity_ - 1),
      nodes_(new Node[capacity_]),
      buckets_(new std::atomic<uint64_t>[2 * capacity_]) {
  assert(retention_ns >= 0);
  for (size_t i = 0; i < 2 * capacity_; ++i) {
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
  Match match;
  for (uint64_t ticket = from; ticket != 0 && ticket != until;) {
    const Node& node = NodeFor(ticket);
    // acquire on every load keeps them in program order; see the class comment.
    if (node.stamp.load(std::memory_order_acquire) != StampOf(ticket)) break;  // Recycled.
    const uint64_t node_id = node.id.load(std::memory_order_acquire);
    const uint64_t next = node.next.load(std::memory_order_acquire);
    const uint64_t word = node.answer.load(std::memory_order_acquire);
    const int64_t received_ns = node.received_ns.load(std::memory_order_acquire);
    const uint64_t fingerprint = node.fingerprint.load(std::memory_order_acquire);
    if (node.stamp.load(std::memory_order_acquire) != StampOf(ticket)) break;  // Torn.
    // Pending under another ticket: a recycler committed and is about to restamp it. Its checks
    // found the rest of the chain recycled.
    if ((word & kStateMask) == kPending && PayloadOf(word) != ticket) break;
    if (node_id == id) {
      if ((word & kStateMask) != kReleased) {
        match.found = true;
        match.answer_word = word;
        match.received_ns = received_ns;
        match.fingerprint = fingerprint;
        return match;
      }
      if (match.released_ticket == 0) match.released_ticket = ticket;
    }
    ticket = next;
  }
  return match;
}

// `stamp` and `word` were loaded (acquire) from `node`, so the owner's fields read here are its
// own or newer; a newer owner changes the answer word, and the caller's CAS from `word` fails.
IdempotencyTable::Verdict IdempotencyTable::Judge(const Node& node, uint64_t stamp, uint64_t word,
                                                  uint64_t ticket, int64_t now_ns) const {
  if ((stamp & kWriting) != 0) return Verdict::kSkip;  // Another claimer is writing it.
  if (stamp >= StampOf(ticket)) return Verdict::kSkip;  // A newer ticket owns it: lapped.
  const uint64_t state = word & kStateMask;
  if (state == kPending) return Verdict::kSkip;  // Still being answered: never forgotten.
  if (state == kFinal) {
    // acquire: see the class comment. The id was first seen at received_ns; it is kept until
    // retention_ns after that.
    const int64_t received_ns = node.received_ns.load(std::memory_order_acquire);
    if (received_ns > now_ns - retention_ns_) return Verdict::kTooYoung;
  }
  // acquire (both loads): see the class comment.
  const uint64_t next = node.next.load(std::memory_order_acquire);
  // A live successor would be hidden from walkers, which stop at the first recycled node.
  if (next != 0 && NodeFor(next).stamp.load(std::memory_order_acquire) == StampOf(next)) {
    return Verdict::kSkip;
  }
  return Verdict::kRecycle;
}

uint64_t IdempotencyTable::TakeNode(uint64_t id, uint64_t fingerprint, int64_t received_ns,
                                    int64_t now_ns, ClaimKind* kind) {
  // relaxed: the cursor only orders tickets; each node's stamp and answer order its contents.
  uint64_t last = last_ticket_.load(std::memory_order_relaxed);
  for (size_t taken = 0; taken < capacity_;) {
    const uint64_t ticket = last + 1;
    Node& node = NodeFor(ticket);
    // acquire (both): see the previous owner's fields, which Judge checks.
    uint64_t stamp = node.stamp.load(std::memory_order_acquire);
    uint64_t word = node.answer.load(std::memory_order_acquire);
    Verdict verdict = Judge(node, stamp, word, ticket, now_ns);
    if (verdict == Verdict::kTooYoung) {
      // The oldest node in ring order is younger than the retention: the table holds less than
      // the retention at this rate. Refused without moving the cursor: no capacity taken.
      retention_refusals_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic.
      *kind = ClaimKind::kRetention;
      return 0;
    }
    // Take the ticket, to recycle its node or to skip it. relaxed: see above; on failure `last`
    // is the newer cursor, and the next ticket is judged afresh.
    if (!last_ticket_.compare_exchange_weak(last, ticket, std::memory_order_relaxed,
                                            std::memory_order_relaxed)) {
      continue;
    }
    last = ticket;
    ++taken;
    if (claim_pause_for_test_) claim_pause_for_test_(ticket);
    if (verdict == Verdict::kSkip) continue;  // It survives another lap.
    // Judged before the ticket was ours: if this claimer was held since, newer ones may have
    // lapped it (the stamp is newer then) or written the node. Judge again.
    stamp = node.stamp.load(std::memory_order_acquire);
    word = node.answer.load(std::memory_order_acquire);
    verdict = Judge(node, stamp, word, ticket, now_ns);
    if (verdict != Verdict::kRecycle) continue;
    // The commit point: from the word judged, so that a reviver (Revive) or another recycler
    // that changed it since wins. acquire on success: the previous owner is done with the node;
    // relaxed on failure: the next ticket is tried afresh.
    if (!node.answer.compare_exchange_strong(word, PendingWord(ticket), std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
      continue;
    }
    // release (all): a walker that reads one of these sees kWriting (or the pending word of
    // another ticket) on its second stamp check, and drops what it read.
    node.stamp.store(StampOf(ticket) | kWriting, std::memory_order_release);
    node.id.store(id, std::memory_order_release);
    node.received_ns.store(received_ns, std::memory_order_release);
    node.fingerprint.store(fingerprint, std::memory_order_release);
    return ticket;
  }
  overruns_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic.
  *kind = ClaimKind::kFull;
  return 0;
}

bool IdempotencyTable::Revive(uint64_t ticket, uint64_t fingerprint, int64_t received_ns) {
  Node& node = NodeFor(ticket);
  uint64_t expected = ReleasedWord(ticket);
  // The same word a recycler CASes from: one of the two wins. acquire on success: the releaser
  // is done with the node; relaxed on failure: the caller walks again.
  if (!node.answer.compare_exchange_strong(expected, PendingWord(ticket),
                                           std::memory_order_acquire, std::memory_order_relaxed)) {
    return false;
  }
  // release: published to readers by the final answer's release CAS (Record), and ignored while
  // the node is pending.
  node.received_ns.store(received_ns, std::memory_order_release);
  node.fingerprint.store(fingerprint, std::memory_order_release);
  return true;
}

IdempotencyTable::Claim IdempotencyTable::ClaimId(uint64_t id, uint64_t fingerprint,
                                                  int64_t now_ns) {
  assert(id != 0);
  std::atomic<uint64_t>& bucket = BucketFor(id);
  auto found = [](const Match& match) -> Claim {
    if ((match.answer_word & kStateMask) == kPending) return {ClaimKind::kInFlight, 0, {}};
    return {ClaimKind::kDuplicate, 0,
            UnpackAnswer(match.answer_word, match.received_ns, match.fingerprint)};
  };
  // acquire: the nodes reachable from the head are fully linked.
  uint64_t head = bucket.load(std::memory_order_acquire);
  // Probe first: a duplicate or an in-flight retry takes no ticket, and a retry after BUSY
  // revives its released node.
  for (;;) {
    const Match match = Walk(id, head, 0);
    if (match.found) return found(match);
    if (match.released_ticket == 0) break;
    if (Revive(match.released_ticket, fingerprint, now_ns)) {
      return {ClaimKind::kNew, match.released_ticket, {}};
    }
    head = bucket.load(std::memory_order_acquire);  // Revived or recycled meanwhile: again.
  }
  ClaimKind refused = ClaimKind::kFull;
  const uint64_t ticket = TakeNode(id, fingerprint, now_ns, now_ns, &refused);
  if (ticket == 0) return {refused, 0, {}};
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
      // Our node is never linked: released, and linked to nothing, so it is recyclable. No
      // walker can reach it, so no one revives it.
      node.next.store(0, std::memory_order_release);
      node.answer.store(ReleasedWord(ticket), std::memory_order_release);
      return found(match);
    }
  }
}

bool IdempotencyTable::Restore(uint64_t id, const StoredAnswer& answer, int64_t now_ns) {
  assert(id != 0);
  ClaimKind refused = ClaimKind::kFull;
  const uint64_t ticket = TakeNode(id, answer.fingerprint, answer.received_ns, now_ns, &refused);
  if (ticket == 0) return false;
  Node& node = NodeFor(ticket);
  // relaxed (all): no other thread uses the table during recovery; its start publishes it.
  node.answer.store(FinalWord(answer, ticket), std::memory_order_relaxed);
  std::atomic<uint64_t>& bucket = BucketFor(id);
  node.next.store(bucket.load(std::memory_order_relaxed), std::memory_order_relaxed);
  node.stamp.store(StampOf(ticket), std::memory_order_relaxed);
  bucket.store(ticket, std::memory_order_relaxed);
  return true;
}

void IdempotencyTable::SetFinalWord(uint64_t ticket, uint64_t word) {
  uint64_t expected = PendingWord(ticket);
  // release: a reader that sees the final word sees nothing older than it (the fingerprint and
  // received_ns of a revived node); acquire not needed.
  const bool owned = NodeFor(ticket).answer.compare_exchange_strong(
      expected, word, std::memory_order_release, std::memory_order_relaxed);
  // A pending node is never recycled, so only a second answer for one claim can fail here.
  VOUCH_CHECK(owned, "an idempotency claim is answered once, by its owner");
}

void IdempotencyTable::Record(uint64_t ticket, const StoredAnswer& answer) {
  SetFinalWord(ticket, FinalWord(answer, ticket));
}

void IdempotencyTable::Release(uint64_t ticket) { SetFinalWord(ticket, ReleasedWord(ticket)); }

std::optional<StoredAnswer> IdempotencyTable::Find(uint64_t id) const {
  const uint64_t head = BucketFor(id).load(std::memory_order_acquire);  // acquire: see ClaimId.
  const Match match = Walk(id, head, 0);
  if (!match.found || (match.answer_word & kStateMask) != kFinal) return std::nullopt;
  return UnpackAnswer(match.answer_word, match.received_ns, match.fingerprint);
}

std::optional<int64_t> IdempotencyTable::OldestReceivedNs() const {
  // relaxed: an estimate; the node's own fields are read with acquire.
  const uint64_t last = last_ticket_.load(std::memory_order_relaxed);
  if (last == 0) return std::nullopt;
  // Before the first lap, ticket 1's node; after, the node the cursor reaches next, which holds
  // the ticket a lap before it (or an older, skipped one).
  const Node& node = NodeFor(last < capacity_ ? 1 : last + 1);
  if (node.stamp.load(std::memory_order_acquire) == 0) return std::nullopt;
  return node.received_ns.load(std::memory_order_acquire);
}

}  // namespace vouch
