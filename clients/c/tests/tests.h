#ifndef TESTS_H
#define TESTS_H

void test_encoding(void);
void test_installation(void);
void test_vectors(void);
void test_storage(void);
void test_online(void);
void test_offline(void);
void test_leases(void);
/* 0, or 77 when skipped */
int test_python(void);

#endif
