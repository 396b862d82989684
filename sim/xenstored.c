/* sim/xenstored.c: placeholder; the simulated xenstored lands here. */
#include "simxen.h"
int xs_server_init(void) { return 0; }
int xs_server_add_domain(domid_t domid) { (void)domid; return 0; }
void xs_server_remove_domain(domid_t domid) { (void)domid; }
void xs_server_fini(void) { }
