/* keymem.h: no key bytes left behind in freed memory.
 *
 * OpenSSL decodes private keys (PEM to DER to numbers) through temporary
 * buffers it frees without wiping; a core file or a read of freed memory
 * would find the key there. keymem_init gives OpenSSL an allocator that
 * wipes every block when it is freed or moved. The numbers of a loaded
 * private key live in OpenSSL's secure heap (master.c), which is also
 * left out of core dumps. */
#ifndef DIJK_KEYMEM_H
#define DIJK_KEYMEM_H

/* Must run before anything uses OpenSSL (first thing in main); returns
 * 0, or -1 when OpenSSL had already allocated. */
int keymem_init(void);

#endif
