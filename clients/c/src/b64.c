/* base64url without padding (RFC 4648 §5): encoding, not crypto, so kept here and small;
 * and the library's random texts and numbers, from OpenSSL's generator. */
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

unsigned char *b64url_decode(const char *text, size_t length, size_t *out_length)
{
    /* one character left over carries 6 bits, less than a byte: no encoder makes that */
    if (length % 4 == 1)
        return NULL;
    unsigned char *out = malloc(length / 4 * 3 + 3);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    unsigned int bits = 0;
    int held = 0;
    for (size_t i = 0; i < length; i++) {
        int value = value_of((unsigned char)text[i]);
        if (value < 0) {
            free(out);
            return NULL;
        }
        bits = (bits << 6) | (unsigned int)value;
        held += 6;
        if (held >= 8) {
            held -= 8;
            out[used++] = (unsigned char)(bits >> held);
            bits &= (1u << held) - 1;
        }
    }
    *out_length = used;
    return out;
}

char *b64url_encode(const unsigned char *data, size_t length)
{
    char *out = malloc(length / 3 * 4 + 5);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    unsigned int bits = 0;
    int held = 0;
    for (size_t i = 0; i < length; i++) {
        bits = (bits << 8) | data[i];
        held += 8;
        while (held >= 6) {
            held -= 6;
            out[used++] = ALPHABET[(bits >> held) & 63];
        }
        bits &= (1u << held) - 1;
    }
    if (held > 0)
        out[used++] = ALPHABET[(bits << (6 - held)) & 63];
    out[used] = '\0';
    return out;
}

char *random_urlsafe(size_t bytes)
{
    unsigned char buffer[64];
    if (bytes > sizeof buffer || RAND_bytes(buffer, (int)bytes) != 1)
        return NULL;
    return b64url_encode(buffer, bytes);
}

double random_fraction(void)
{
    unsigned int random = 0;
    RAND_bytes((unsigned char *)&random, sizeof random);
    return (double)random / 4294967295.0;
}
