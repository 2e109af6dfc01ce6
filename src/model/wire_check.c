/* placeholder until implemented */
typedef int mq_placeholder_wire_check;
