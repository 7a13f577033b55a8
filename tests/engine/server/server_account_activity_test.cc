// QueryAccount over real loopback TCP: an account's recent transactions, newest first, with
// their state now, as the wire contract (proto/vouch.proto) states it, in every policy mode.
//
// Method: a threaded server takes a batch that debits and credits account 5 (one credit fails
// fraud), waits for every Confirmation, then asks QueryAccount until every entry is final (a
// bounded loop; verification is fast) and checks the entries field by field against what was
// submitted and what was answered: order, direction, state and reason. Paging by limit and
// before_seq must list the same entries, and an invalid query is refused with
// ERROR_CODE_INVALID_MESSAGE.
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

using vouch::testing::kBlockedMerchant;

class ServerAccountActivityTest : public ServerTest,
                                  public ::testing::WithParamInterface<PolicyMode> {};

// Sends `query` and returns its answer, skipping the Outcomes that arrive meanwhile.
v1::AccountTransactions Ask(TestClient& client, const v1::QueryAccount& query) {
  v1::ClientMessage message;
  *message.mutable_query_account() = query;
  EXPECT_TRUE(client.Send(message));
  v1::ServerMessage answer;
  while (client.Read(&answer)) {
    if (answer.has_account_transactions()) return answer.account_transactions();
    EXPECT_TRUE(answer.has_outcome()) << answer.DebugString();
  }
  ADD_FAILURE() << "no AccountTransactions";
  return {};
}

bool AllFinal(const v1::AccountTransactions& page) {
  for (const v1::AccountTransactionEntry& entry : page.transactions()) {
    if (entry.state() == v1::ACCOUNT_TRANSACTION_STATE_PENDING ||
        entry.state() == v1::ACCOUNT_TRANSACTION_STATE_HELD) {
      return false;
    }
  }
  return true;
}

TEST_P(ServerAccountActivityTest, ListsTheAccountsTransactionsNewestFirstWithTheirState) {
  Options engine = ServerTestBank();
  engine.policy.mode = GetParam();
  engine.policy.hold_amount_minor_min = 500;
  StartServer({}, std::move(engine));
  TestClient client(port());
  ASSERT_TRUE(client.Hello());
  v1::ClientMessage submit;
  auto* batch = submit.mutable_submit();
  *batch->add_transactions() = WireTransfer(101, 5, 6, 100);
  *batch->add_transactions() = WireTransfer(102, 7, 5, 700);
  *batch->add_transactions() = WireTransfer(103, 9, 5, 50, kBlockedMerchant);
  *batch->add_transactions() = WireTransfer(104, 5, 8, 200);
  *batch->add_transactions() = WireTransfer(105, 5, 5, 200);  // Refused: never listed.
  ASSERT_TRUE(client.Send(submit));
  std::vector<v1::Confirmation> confirmations;
  v1::ServerMessage message;
  while (confirmations.size() < 5 && client.Read(&message)) {
    if (message.has_confirmation()) confirmations.push_back(message.confirmation());
  }
  ASSERT_EQ(confirmations.size(), 5u);
  EXPECT_EQ(confirmations[4].status(), v1::CONFIRM_STATUS_REJECTED);

  v1::QueryAccount query;
  query.set_account(5);
  v1::AccountTransactions page = Ask(client, query);
  for (int tries = 0; !AllFinal(page) && tries < 500; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    page = Ask(client, query);
  }
  EXPECT_EQ(page.account(), 5u);
  EXPECT_FALSE(page.more());
  EXPECT_EQ(page.oldest_kept_seq(), 1u);
  ASSERT_EQ(page.transactions_size(), 4);
  const uint64_t ids[] = {104, 103, 102, 101};
  for (int i = 0; i < 4; ++i) {
    const v1::AccountTransactionEntry& entry = page.transactions(i);
    const v1::Confirmation& confirmation = confirmations[3 - i];
    const v1::Transaction& sent = batch->transactions(3 - i);
    EXPECT_EQ(entry.transaction_id(), ids[i]);
    EXPECT_EQ(entry.seq(), confirmation.seq());
    EXPECT_EQ(entry.held(), confirmation.held());
    EXPECT_EQ(entry.source_account(), sent.source_account());
    EXPECT_EQ(entry.destination_account(), sent.destination_account());
    EXPECT_EQ(entry.amount(), sent.amount());
    EXPECT_EQ(entry.currency(), "USD");
    EXPECT_EQ(entry.debit(), sent.source_account() == 5);
    EXPECT_GT(entry.received_unix_ns(), 0);
    EXPECT_GE(entry.decided_unix_ns(), entry.received_unix_ns());
    if (entry.transaction_id() == 103) {
      EXPECT_EQ(entry.state(), entry.held() ? v1::ACCOUNT_TRANSACTION_STATE_REJECTED
                                            : v1::ACCOUNT_TRANSACTION_STATE_LATE_FAILED);
      EXPECT_EQ(entry.reason(), v1::REASON_BLOCKED_MERCHANT);
      EXPECT_EQ(entry.verifier(), v1::VERIFIER_FRAUD);
      // A held transaction's answer said the same.
      if (entry.held()) {
        EXPECT_EQ(confirmation.status(), v1::CONFIRM_STATUS_REJECTED);
      }
    } else {
      EXPECT_EQ(entry.state(), v1::ACCOUNT_TRANSACTION_STATE_VERIFIED) << entry.transaction_id();
      EXPECT_EQ(entry.reason(), v1::REASON_NONE);
    }
  }
  // Held as the policy says (hybrid: amounts of 500 and more).
  EXPECT_EQ(page.transactions(2).held(), GetParam() != PolicyMode::kAsync);
  EXPECT_EQ(page.transactions(0).held(), GetParam() == PolicyMode::kSync);

  // Pages of two list the same entries.
  query.set_limit(2);
  std::vector<uint64_t> paged;
  for (int pages = 0; pages < 4; ++pages) {
    const v1::AccountTransactions part = Ask(client, query);
    for (const auto& entry : part.transactions()) paged.push_back(entry.transaction_id());
    if (!part.more()) break;
    query.set_before_seq(part.next_before_seq());
  }
  EXPECT_EQ(paged, std::vector<uint64_t>(std::begin(ids), std::end(ids)));

  // Nothing outside the time range.
  query.Clear();
  query.set_account(5);
  query.set_since_unix_ns(page.transactions(0).received_unix_ns() + 1);
  EXPECT_EQ(Ask(client, query).transactions_size(), 0);

  v1::ClientMessage invalid;
  invalid.mutable_query_account()->set_account(0);
  ASSERT_TRUE(client.Send(invalid));
  bool refused = false;
  while (client.Read(&message)) {
    if (message.has_error()) {
      EXPECT_EQ(message.error().code(), v1::ERROR_CODE_INVALID_MESSAGE);
      refused = true;
      break;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_GE(server_->Stats().account_queries, 4u);
}

INSTANTIATE_TEST_SUITE_P(Modes, ServerAccountActivityTest,
                         ::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                           PolicyMode::kSync));

}  // namespace
}  // namespace vouch::server::testing
