// The gathering write BIO over a real nonblocking socketpair: it gathers until flushed, keeps the
// order of bytes through a full socket, reports errors, and holds a buffer only while it has bytes to send.
#include "net/tls_write_bio.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace bulwark::net {
namespace {

class GatherBio : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
    for (int fd : fds_) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    bio_ = new_gathering_socket_bio(fds_[0]);
    ASSERT_NE(bio_, nullptr);
  }
  void TearDown() override {
    BIO_free(bio_);
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  std::string drain() {
    std::string got;
    char buf[65536];
    for (ssize_t n; (n = ::read(fds_[1], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
    return got;
  }
  // Writes all of `data` (as OpenSSL does: it retries short writes with the rest).
  int write_all(const std::string& data) {
    std::size_t at = 0;
    while (at < data.size()) {
      const int n = BIO_write(bio_, data.data() + at, static_cast<int>(data.size() - at));
      if (n <= 0) return n;
      at += static_cast<std::size_t>(n);
    }
    return 1;
  }
  int fds_[2] = {-1, -1};
  BIO* bio_ = nullptr;
};

std::string pattern(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) & 0xff);
  return s;
}

TEST_F(GatherBio, GathersUntilFlushedThenSendsEverythingAndGivesTheBufferBack) {
  const std::size_t before = gather_buffers_in_use();
  const std::string a = pattern(16 * 1024 + 22, 1), b = pattern(300, 2);
  ASSERT_EQ(write_all(a), 1);
  ASSERT_EQ(write_all(b), 1);
  EXPECT_EQ(drain(), "");  // nothing left the process yet
  EXPECT_EQ(BIO_wpending(bio_), static_cast<int>(a.size() + b.size()));
  EXPECT_EQ(gather_buffers_in_use(), before + 1);
  EXPECT_EQ(BIO_flush(bio_), 1);
  EXPECT_EQ(BIO_wpending(bio_), 0);
  EXPECT_EQ(gather_buffers_in_use(), before);  // an idle connection holds no buffer
  EXPECT_EQ(drain(), a + b);
}

TEST_F(GatherBio, KeepsTheOrderThroughAFullSocket) {
  int small = 4096;
  setsockopt(fds_[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  std::string sent, got;
  // More than the buffer and the socket hold together: writes must start asking for a retry.
  bool retried = false;
  for (std::size_t i = 0; sent.size() < 3 * kGatherBufferBytes; ++i) {
    const std::string chunk = pattern(16 * 1024 + 29, i);
    std::size_t at = 0;
    while (at < chunk.size()) {
      const int n = BIO_write(bio_, chunk.data() + at, static_cast<int>(chunk.size() - at));
      if (n > 0) {
        at += static_cast<std::size_t>(n);
        continue;
      }
      ASSERT_TRUE(BIO_should_retry(bio_));
      ASSERT_TRUE(BIO_should_write(bio_));
      retried = true;
      got += drain();  // the peer reads; the next write goes on
    }
    sent += chunk;
  }
  EXPECT_TRUE(retried);
  while (BIO_flush(bio_) != 1) {
    ASSERT_TRUE(BIO_should_retry(bio_));
    got += drain();
  }
  got += drain();
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
}

TEST_F(GatherBio, FlushIntoAFullSocketAsksForARetry) {
  int small = 4096;
  setsockopt(fds_[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  const std::string big = pattern(200 * 1024, 7);
  ASSERT_EQ(write_all(big), 1);
  EXPECT_LE(BIO_flush(bio_), 0);
  EXPECT_TRUE(BIO_should_retry(bio_));
  EXPECT_GT(BIO_wpending(bio_), 0);
  std::string got = drain();
  while (BIO_flush(bio_) != 1) got += drain();
  got += drain();
  EXPECT_TRUE(got == big);
}

TEST_F(GatherBio, APeerThatWentAwayIsAnErrorNotARetry) {
  ::close(fds_[1]);
  fds_[1] = -1;
  ASSERT_EQ(write_all(pattern(1000, 3)), 1);  // gathered: no socket call yet
  EXPECT_EQ(BIO_flush(bio_), -1);
  EXPECT_FALSE(BIO_should_retry(bio_));
}

TEST_F(GatherBio, FreeingWithUnsentBytesGivesTheBufferBack) {
  const std::size_t before = gather_buffers_in_use();
  BIO* other = new_gathering_socket_bio(fds_[0]);
  ASSERT_EQ(BIO_write(other, "abc", 3), 3);
  EXPECT_EQ(gather_buffers_in_use(), before + 1);
  BIO_free(other);
  EXPECT_EQ(gather_buffers_in_use(), before);
  EXPECT_LE(gather_buffers_pooled(), 4u);
  EXPECT_EQ(fcntl(fds_[0], F_GETFD), 0);  // the socket stays open: the connection owns it
}

}  // namespace
}  // namespace bulwark::net
