/* base64url, UTF-8, JSON and time edge cases: where a hand-written decoder goes wrong. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "tests.h"

static void base64url(void)
{
    size_t length;
    unsigned char *data = b64url_decode("aGVsbG8", 7, &length);
    CHECK(data != NULL && length == 5 && memcmp(data, "hello", 5) == 0);
    free(data);
    data = b64url_decode("", 0, &length);
    CHECK(data != NULL && length == 0);
    free(data);
    /* the url-safe alphabet only: '+', '/', '=' padding and whitespace are refused */
    CHECK(b64url_decode("aGVsbG8=", 8, &length) == NULL);
    CHECK(b64url_decode("a+b/", 4, &length) == NULL);
    CHECK(b64url_decode("aGVs bG8", 8, &length) == NULL);
    /* one character left over is no whole byte */
    CHECK(b64url_decode("aGVsb", 5, &length) == NULL);
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t size = 0; size <= 256; size += 37) {
        char *text = b64url_encode(all, size);
        unsigned char *back = b64url_decode(text, strlen(text), &length);
        CHECK(back != NULL && length == size && memcmp(back, all, size) == 0);
        CHECK(strchr(text, '=') == NULL && strchr(text, '+') == NULL);
        free(text);
        free(back);
    }
    char *nonce = random_urlsafe(24);
    CHECK(nonce != NULL && strlen(nonce) == 32);
    free(nonce);
}

static void utf8_and_json(void)
{
    CHECK(utf8_valid("caf\xc3\xa9", 5));
    CHECK(!utf8_valid("caf\xc3", 4));          /* cut short */
    CHECK(!utf8_valid("\xc0\xaf", 2));         /* overlong */
    CHECK(!utf8_valid("\xed\xa0\x80", 3));     /* a UTF-16 surrogate */
    CHECK(!utf8_valid("\xf4\x90\x80\x80", 4)); /* beyond U+10FFFF */
    CHECK(utf8_valid("\xf0\x9f\x94\x91", 4));
    cJSON *value = json_parse("{\"a\": 1}  \n", 11);
    CHECK(cJSON_IsObject(value));
    cJSON_Delete(value);
    CHECK(json_parse("{\"a\": 1} x", 10) == NULL);
    CHECK(json_parse("{\"a\": \"\xff\"}", 10) == NULL);
    CHECK(json_parse("", 0) == NULL);
    CHECK(json_parse("{\"a\": 1}\0{", 10) == NULL);
    /* member names are matched with their case: "Exp" is not "exp" */
    value = json_parse("{\"Exp\": 5}", 10);
    int64_t moment;
    CHECK(!claims_time(value, "exp", &moment));
    cJSON_Delete(value);
    value = json_parse("{\"exp\": true, \"iat\": 1.5e300, \"nbf\": 1780315200}", 48);
    CHECK(!claims_time(value, "exp", &moment));
    CHECK(!claims_time(value, "iat", &moment));
    CHECK(claims_time(value, "nbf", &moment) && moment == 1780315200);
    cJSON_Delete(value);
    /* the data files look like the Python kit's: json.dumps(indent=2, sort_keys=True) */
    const char *python = "{\n  \"a\": {\n    \"y\": true,\n    \"z\": null\n  },\n  \"b\": [\n"
                         "    1,\n    \"x\",\n    {}\n  ],\n  \"c\": [],\n  \"d\": \"\\\"\\\\\"\n}\n";
    value = cJSON_Parse("{\"d\": \"\\\"\\\\\", \"c\": [], \"b\": [1, \"x\", {}], "
                        "\"a\": {\"z\": null, \"y\": true}}");
    char *printed = json_print_sorted(value);
    CHECK_STR(printed, python);
    free(printed);
    cJSON_Delete(value);
    char **codes;
    size_t count;
    value = cJSON_Parse("[\"steel\", {\"code\": \"fem\", \"name\": \"FEM\"}, \"steel\", \"\", 3, "
                        "{\"name\": \"no code\"}]");
    CHECK(feature_codes(value, &codes, &count) && count == 2);
    if (count == 2) {
        CHECK_STR(codes[0], "fem");
        CHECK_STR(codes[1], "steel");
    }
    free_strings(codes, count);
    cJSON_Delete(value);
    value = cJSON_Parse("{\"features\": \"steel\"}");
    CHECK(feature_codes(cJSON_GetObjectItem(value, "features"), &codes, &count) && count == 0);
    cJSON_Delete(value);
}

static void times(void)
{
    int64_t moment;
    CHECK(parse_time("2026-06-01T12:00:00Z", &moment) && moment == 1780315200);
    CHECK(parse_time("2026-06-01T14:00:00+02:00", &moment) && moment == 1780315200);
    CHECK(parse_time("2026-06-01T12:00:00.123456+00:00", &moment) && moment == 1780315200);
    CHECK(parse_time("2026-06-01 12:00:00z", &moment) && moment == 1780315200);
    CHECK(parse_time("2026-06-01T07:30-0430", &moment) && moment == 1780315200);
    CHECK(parse_time("2024-02-29T00:00:00Z", &moment));
    /* a time without a zone is refused, never guessed to be UTC */
    CHECK(!parse_time("2026-06-01T12:00:00", &moment));
    CHECK(!parse_time("2026-06-01", &moment));
    CHECK(!parse_time("2025-02-29T00:00:00Z", &moment));
    CHECK(!parse_time("2026-13-01T00:00:00Z", &moment));
    CHECK(!parse_time("yesterday", &moment));
    CHECK(!parse_time("", &moment));
    char *text = iso_time(1780315200);
    CHECK_STR(text, "2026-06-01T12:00:00Z");
    free(text);
    text = iso_time_offset(1780315200);
    CHECK_STR(text, "2026-06-01T12:00:00+00:00");
    free(text);
    char buffer[32];
    CHECK(lc_format_time(LC_NO_TIME, buffer, sizeof buffer) == LC_OK && buffer[0] == '\0');
    CHECK(lc_format_time(1780315200, buffer, sizeof buffer) == LC_OK);
    CHECK_STR(buffer, "2026-06-01T12:00:00Z");
    CHECK(lc_format_time(1780315200, buffer, 10) == LC_ERR_USAGE);
}

void test_encoding(void)
{
    base64url();
    utf8_and_json();
    times();
}
