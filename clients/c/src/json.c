/* Small cJSON helpers. Member names are always matched case-sensitively: cJSON's plain
 * GetObjectItem ignores case, and "Exp" is not "exp". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *json_any_str(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

const char *json_str(const cJSON *object, const char *name)
{
    const char *value = json_any_str(object, name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

cJSON *json_obj(const cJSON *object, const char *name)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsObject(item) ? item : NULL;
}

bool json_is_true(const cJSON *object, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(object, name));
}

bool utf8_valid(const char *data, size_t length)
{
    const unsigned char *bytes = (const unsigned char *)data;
    size_t i = 0;
    while (i < length) {
        unsigned char c = bytes[i];
        size_t extra;
        unsigned int code;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            code = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            code = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            code = c & 0x07;
        } else {
            return false;
        }
        if (length - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((bytes[i + k] & 0xc0) != 0x80)
                return false;
            code = (code << 6) | (bytes[i + k] & 0x3f);
        }
        /* overlong forms, UTF-16 surrogates and beyond U+10FFFF are not UTF-8 */
        if ((extra == 2 && code < 0x800) || (extra == 3 && (code < 0x10000 || code > 0x10ffff)) ||
            (code >= 0xd800 && code <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

cJSON *json_parse(const char *data, size_t length)
{
    if (data == NULL || !utf8_valid(data, length) || memchr(data, '\0', length) != NULL)
        return NULL;
    const char *end = NULL;
    cJSON *value = cJSON_ParseWithLengthOpts(data, length, &end, false);
    if (value == NULL)
        return NULL;
    /* only whitespace may follow the value */
    for (const char *p = end; p < data + length; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(value);
            return NULL;
        }
    }
    return value;
}

bool json_set(cJSON *object, const char *name, cJSON *value)
{
    if (value == NULL)
        value = cJSON_CreateNull();
    if (value == NULL)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(object, name) != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(object, name, value);
    return cJSON_AddItemToObject(object, name, value);
}

bool json_set_str(cJSON *object, const char *name, const char *value)
{
    return json_set(object, name, value != NULL ? cJSON_CreateString(value) : cJSON_CreateNull());
}

static void sort_members(cJSON *item)
{
    if (item == NULL)
        return;
    for (cJSON *child = item->child; child != NULL; child = child->next)
        sort_members(child);
    if (!cJSON_IsObject(item) || item->child == NULL)
        return;
    /* insertion sort of the member list: these documents have a dozen members */
    cJSON *sorted = NULL;
    cJSON *next;
    for (cJSON *member = item->child; member != NULL; member = next) {
        next = member->next;
        cJSON **slot = &sorted;
        while (*slot != NULL && strcmp((*slot)->string, member->string) <= 0)
            slot = &(*slot)->next;
        member->next = *slot;
        *slot = member;
    }
    cJSON *previous = NULL;
    for (cJSON *member = sorted; member != NULL; member = member->next) {
        member->prev = previous;
        previous = member;
    }
    /* cJSON keeps the last member in the first one's prev */
    sorted->prev = previous;
    item->child = sorted;
}

typedef struct text_buffer {
    char *data;
    size_t length;
    size_t size;
    bool failed;
} text_buffer;

static void append(text_buffer *buffer, const char *text, size_t length)
{
    if (buffer->failed)
        return;
    if (buffer->length + length + 1 > buffer->size) {
        size_t size = (buffer->size + length + 1) * 2;
        char *grown = realloc(buffer->data, size);
        if (grown == NULL) {
            buffer->failed = true;
            return;
        }
        buffer->data = grown;
        buffer->size = size;
    }
    memcpy(buffer->data + buffer->length, text, length);
    buffer->length += length;
    buffer->data[buffer->length] = '\0';
}

static void append_text(text_buffer *buffer, const char *text)
{
    append(buffer, text, strlen(text));
}

static void append_scalar(text_buffer *buffer, const cJSON *item)
{
    /* a detached copy, so cJSON prints the value alone, escaped as JSON wants */
    cJSON *copy = cJSON_Duplicate(item, false);
    char *text = copy != NULL ? cJSON_PrintUnformatted(copy) : NULL;
    if (text == NULL)
        buffer->failed = true;
    else
        append_text(buffer, text);
    cJSON_free(text);
    cJSON_Delete(copy);
}

static void append_indent(text_buffer *buffer, int depth)
{
    append_text(buffer, "\n");
    for (int i = 0; i < depth; i++)
        append_text(buffer, "  ");
}

static void append_value(text_buffer *buffer, const cJSON *item, int depth)
{
    bool object = cJSON_IsObject(item);
    if (!object && !cJSON_IsArray(item)) {
        append_scalar(buffer, item);
        return;
    }
    if (item->child == NULL) {
        append_text(buffer, object ? "{}" : "[]");
        return;
    }
    append_text(buffer, object ? "{" : "[");
    for (const cJSON *child = item->child; child != NULL; child = child->next) {
        append_indent(buffer, depth + 1);
        if (object) {
            cJSON *name = cJSON_CreateString(child->string);
            if (name == NULL)
                buffer->failed = true;
            else
                append_scalar(buffer, name);
            cJSON_Delete(name);
            append_text(buffer, ": ");
        }
        append_value(buffer, child, depth + 1);
        if (child->next != NULL)
            append_text(buffer, ",");
    }
    append_indent(buffer, depth);
    append_text(buffer, object ? "}" : "]");
}

char *json_print_indented(cJSON *document, bool sorted)
{
    if (sorted)
        sort_members(document);
    text_buffer buffer = {NULL, 0, 0, false};
    append_value(&buffer, document, 0);
    append_text(&buffer, "\n");
    if (buffer.failed) {
        free(buffer.data);
        return NULL;
    }
    return buffer.data;
}

char *json_print_sorted(cJSON *document)
{
    return json_print_indented(document, true);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool feature_codes(const cJSON *value, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (!cJSON_IsArray(value))
        return true;
    size_t size = (size_t)cJSON_GetArraySize(value);
    if (size == 0)
        return true;
    char **codes = calloc(size, sizeof *codes);
    if (codes == NULL)
        return false;
    size_t used = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, value)
    {
        const cJSON *code = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "code")
                                                 : item;
        if (!cJSON_IsString(code) || code->valuestring[0] == '\0')
            continue;
        codes[used] = strdup(code->valuestring);
        if (codes[used] == NULL) {
            free_strings(codes, used);
            return false;
        }
        used++;
    }
    qsort(codes, used, sizeof *codes, compare_strings);
    size_t unique = 0;
    for (size_t i = 0; i < used; i++) {
        if (unique > 0 && strcmp(codes[unique - 1], codes[i]) == 0)
            free(codes[i]);
        else
            codes[unique++] = codes[i];
    }
    if (unique == 0) {
        free(codes);
        codes = NULL;
    }
    *out = codes;
    *count = unique;
    return true;
}

void free_strings(char **strings, size_t count)
{
    if (strings == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

char *dup_or_null(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

char *format_text(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int length = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (length < 0)
        return NULL;
    char *text = malloc((size_t)length + 1);
    if (text == NULL)
        return NULL;
    va_start(args, format);
    vsnprintf(text, (size_t)length + 1, format, args);
    va_end(args);
    return text;
}
