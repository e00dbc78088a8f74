"""(being written this session)"""


def runner_outputs(model, dataset, x, seed=0):
    return [], {}
