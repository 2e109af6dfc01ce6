/* placeholder until implemented */
typedef int mq_placeholder_tensor_proto;
