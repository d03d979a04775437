"""A correct MBConv forward and backward from the block's children. Test fixture."""


def forward(block, x):
    h = x
    if block.expand is not None:
        h = block.expand(h)
    h = block.depthwise(h)
    if block.se is not None:
        h = block.se(h)
    h = block.project(h)
    if block.use_residual:
        return x + block.drop_path(h)
    return h


def backward(block, dy):
    d = dy
    if block.use_residual:
        d = block.drop_path.backward(dy)
    d = block.project.backward(d)
    if block.se is not None:
        d = block.se.backward(d)
    d = block.depthwise.backward(d)
    if block.expand is not None:
        d = block.expand.backward(d)
    if block.use_residual:
        return dy + d
    return d
