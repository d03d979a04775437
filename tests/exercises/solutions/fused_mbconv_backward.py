"""A correct Fused-MBConv forward and backward from the block's children. Test fixture."""


def forward(block, x):
    if block.conv is not None:
        h = block.conv(x)
    else:
        h = block.project(block.expand(x))
    if block.use_residual:
        return x + block.drop_path(h)
    return h


def backward(block, dy):
    d = block.drop_path.backward(dy) if block.use_residual else dy
    if block.conv is not None:
        d = block.conv.backward(d)
    else:
        d = block.expand.backward(block.project.backward(d))
    return dy + d if block.use_residual else d
