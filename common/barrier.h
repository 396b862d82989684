/*
 * common/barrier.h: the one set of memory barriers and shared-memory
 * accessors for both sides (driver and device), in the manner of Linux's
 * virtio_mb/virtio_rmb/virtio_wmb with weak_barriers and of Xen's ring.h.
 *
 * The peer is another domain (or, simulated, another process) running on
 * another CPU, so every barrier here is an SMP barrier built on the
 * compiler's __atomic builtins, never a compiler-only fence. Each use says,
 * next to it, what it orders before what.
 *
 * Shared memory is read with gv_read_once (one load, the value then copied
 * into private memory and checked there) and written with gv_write_once, so
 * the compiler neither tears nor repeats an access the peer can observe.
 * These accept pointers to volatile-qualified objects too.
 *
 * Byte order: virtio 1.x rings and the virtio-blk header are little-endian;
 * both sides use them in native order, which this assertion makes true.
 */
#ifndef GV_COMMON_BARRIER_H
#define GV_COMMON_BARRIER_H

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "grant-virtio accesses virtio's little-endian rings in native order: "
               "a big-endian host needs le16/le32/le64 accessors here");

/* Full barrier: a store ordered before a later load, the case of
 * "publish, then re-check the peer's flag or index" (kick_prepare,
 * enable_cb, the device re-arming notifications). */
#define gv_mb()   __atomic_thread_fence(__ATOMIC_SEQ_CST)
/* Read barrier: loads after it are ordered after loads before it (read
 * the index, then the entries it says were written). */
#define gv_rmb()  __atomic_thread_fence(__ATOMIC_ACQUIRE)
/* Write barrier: stores before it are visible before stores after it
 * (write the entries, then the index that publishes them). */
#define gv_wmb()  __atomic_thread_fence(__ATOMIC_RELEASE)

/* One load with acquire semantics: what follows is ordered after it
 * (an index load, then the entries it covers). */
#define gv_load_acquire(p)      __atomic_load_n((p), __ATOMIC_ACQUIRE)
/* One store with release semantics: what precedes it is visible first
 * (the entries, then the index). */
#define gv_store_release(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* One untorn load or store, no ordering: for values whose ordering another
 * barrier already provides, and for hints (notification flags). */
#define gv_read_once(p)         __atomic_load_n((p), __ATOMIC_RELAXED)
#define gv_write_once(p, v)     __atomic_store_n((p), (v), __ATOMIC_RELAXED)

#endif
