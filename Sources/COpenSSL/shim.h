#ifndef PINHOLE_COPENSSL_SHIM_H
#define PINHOLE_COPENSSL_SHIM_H

// The system's OpenSSL (Debian: libssl-dev, OpenSSL >= 3.0). Only PinholeTLS
// imports this module. Several OpenSSL "functions" are macros over
// SSL_CTX_ctrl / SSL_ctrl or variadic helpers, which Swift cannot call; the
// static inline wrappers below give them real prototypes.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "Pinhole needs OpenSSL 3.0 or later (Debian bookworm: apt-get install libssl-dev)"
#endif

// Composite macros Swift cannot import as constants.
static inline uint64_t pinhole_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline unsigned long pinhole_XN_FLAG_ONELINE(void) { return XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB; }

static inline int pinhole_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

static inline long pinhole_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

static inline long pinhole_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

static inline int pinhole_SSL_CTX_add0_chain_cert(SSL_CTX *ctx, X509 *cert) {
    return (int)SSL_CTX_add0_chain_cert(ctx, cert);
}

static inline int pinhole_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

static inline void pinhole_BIO_set_retry_read(BIO *bio) {
    BIO_set_retry_read(bio);
}

static inline void pinhole_BIO_clear_retry_flags(BIO *bio) {
    BIO_clear_retry_flags(bio);
}

static inline EVP_PKEY *pinhole_EVP_EC_gen_P256(void) {
    return EVP_EC_gen("P-256");
}

static inline long pinhole_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

static inline int pinhole_sk_GENERAL_NAME_num(const GENERAL_NAMES *names) {
    return sk_GENERAL_NAME_num(names);
}

static inline GENERAL_NAME *pinhole_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int index) {
    return sk_GENERAL_NAME_value(names, index);
}

/// The ASN1 string behind a DNS or IP subjectAltName entry, or NULL for other kinds.
static inline const ASN1_STRING *pinhole_GENERAL_NAME_dns(const GENERAL_NAME *name) {
    return name->type == GEN_DNS ? name->d.dNSName : NULL;
}

static inline const ASN1_STRING *pinhole_GENERAL_NAME_ip(const GENERAL_NAME *name) {
    return name->type == GEN_IPADD ? name->d.iPAddress : NULL;
}

#endif
