// The write side of a TLS connection's socket. OpenSSL writes each TLS record (at most 16 KiB) to its
// write BIO; sending each one with its own write() costs a system call per record. This BIO gathers the
// records of one burst (a handshake flight, or what one large SSL_write produces) and sends them in one
// write when flushed, as BIO_f_buffer would, but it holds its 256 KiB buffer only while it has bytes
// to send: the buffer comes from a small per-thread pool and goes back to it once everything is sent,
// so an idle connection holds none (BIO_f_buffer keeps its buffer for the connection's life: 256 KiB
// of heap per idle connection, which the allocator then keeps after a connection storm).
#pragma once

#include <openssl/bio.h>

#include <cstddef>

namespace bulwark::net {

inline constexpr std::size_t kGatherBufferBytes = 256 * 1024;

// A BIO that writes to `fd` (and never closes it): BIO_write gathers, BIO_flush sends (0 with
// BIO_should_retry when the socket is full, -1 on a socket error), BIO_wpending counts unsent bytes.
BIO* new_gathering_socket_bio(int fd);

// Buffers held by gathering BIOs of every thread, and buffers idle in this thread's pool.
std::size_t gather_buffers_in_use();
std::size_t gather_buffers_pooled();

}  // namespace bulwark::net
