"""Random splits: the samples are shuffled before they are cut, and each seed gives another split.

Training on several splits shows how much the test loss owes to one particular split.
"""
import statistics

import riskmin

data = riskmin.load("lab1")
test_losses = []
for seed in range(5):
    splits = riskmin.split(data, train=0.8, val=0.1, test=0.1, seed=seed)
    run = riskmin.fit("two_layer", splits, sampling="random", max_steps=1000, batch_size=32, val_every=100,
                      optimizer="sgd", lr=0.05, seed=seed, progress=False)
    test_losses.append(run.test["test_loss"])
    print(f"split {seed}: test loss {run.test['test_loss']:.4f}")
print(f"mean {statistics.mean(test_losses):.4f}, standard deviation {statistics.stdev(test_losses):.4f}")
