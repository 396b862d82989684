/*
 * common/xs_util.h: reading and writing xenstore keys through libxenstore,
 * with strict parsing. Every value read from xenstore may come from a
 * hostile peer: it is copied, length-bounded and parsed completely (no
 * trailing garbage, range checked) before use.
 *
 * All functions return 0 or a negative errno (-ENOENT missing key, -EINVAL
 * malformed value, -ERANGE out of range, -EACCES, -EIO) and do not log.
 * `t` is XBT_NULL outside a transaction.
 */
#ifndef GV_COMMON_XS_UTIL_H
#define GV_COMMON_XS_UTIL_H

#include <stdint.h>
#include <xenstore.h>
#include "abi.h"

#define GV_XS_VALUE_MAX 4096   /* XENSTORE_PAYLOAD_MAX */

/* Reads dir/key into buf (NUL-terminated, at most len-1 bytes; longer is -ERANGE). */
int gv_xs_read_str(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                   char *buf, size_t len);
/* Decimal, or hexadecimal with 0x; value must be <= max. */
int gv_xs_read_u64(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                   uint64_t max, uint64_t *out);
int gv_xs_read_state(struct xs_handle *xs, xs_transaction_t t, const char *dir,
                     const char *key, enum xenbus_state *out);
/* A space-separated list of grant refs; at most max of them. */
int gv_xs_read_refs(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                    grant_ref_t *refs, unsigned max, unsigned *n);

/* The parsers behind the readers, on a value already copied out of xenstore
 * (pure: exposed for the fuzz targets in fuzz/). gv_parse_refs cuts buf. */
int gv_parse_u64(const char *s, uint64_t max, uint64_t *out);
int gv_parse_refs(char *buf, grant_ref_t *refs, unsigned max, unsigned *n);

/* A decimal number as xenstore paths and node names spell it: digits only,
 * no sign, no leading zero (but "0"), at most max. len bytes of s are the
 * whole number (no NUL needed). 0, -EINVAL or -ERANGE. */
int gv_parse_decimal(const char *s, size_t len, uint64_t max, uint64_t *out);
/* A device path of the backend tree: path is ROOT/FE/DEVID, or below it
 * (ROOT/FE/DEVID/KEY...), with FE a domain id (< DOMID_FIRST_RESERVED) and
 * DEVID 0..65535, both strict decimals. Returns 1 with *fe and *devid set;
 * 0 if path is ROOT itself or a path under ROOT that names no device
 * (ROOT/FE, a malformed component); -EINVAL if path is not under ROOT. */
int gv_xs_parse_device_path(const char *path, const char *root, domid_t *fe, unsigned *devid);
/* A virtio device's xenstore `type` as libxl writes it, "virtio,device<ID>"
 * (the devicetree compatible string: ID is the virtio device id in lower-case
 * hexadecimal without leading zeros, so i2c (34) is "virtio,device22"), into
 * *virtio_id. -EINVAL for anything else, including id 0 (reserved). */
int gv_virtio_type_parse(const char *type, uint32_t *virtio_id);

int gv_xs_write_str(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                    const char *val);
int gv_xs_printf(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int gv_xs_write_refs(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                     const grant_ref_t *refs, unsigned n);
int gv_xs_rm(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key);

/* Runs fn inside a transaction, retrying (bounded) while the commit answers
 * EAGAIN. fn returns 0 to commit, negative errno to abort with that error. */
int gv_xs_transaction(struct xs_handle *xs,
                      int (*fn)(struct xs_handle *xs, xs_transaction_t t, void *ctx), void *ctx);

/* "dir/key" into buf; -ENAMETOOLONG if it does not fit. key may be NULL. */
int gv_xs_join(char *buf, size_t len, const char *dir, const char *key);

const char *gv_xenbus_state_name(enum xenbus_state s);

#endif
