"""The basic loop: a linear parametrization ŷ = Hx trained by SGD on random batches for nIters steps.

Nothing is held out: every step draws a random batch of the lab1 samples.
"""
import riskmin

n_iters, batch_size, step_size = 2000, 32, 0.05

data = riskmin.load("lab1")
run = riskmin.fit("linear", data, sampling="random", max_steps=n_iters, batch_size=batch_size,
                  optimizer="sgd", lr=step_size, val=0, test=0, progress=False)
print(f"after {run.summary['steps']} steps the training loss is {run.summary['train_loss']:.4f}")
print(f"the noise variance is {0.5 ** 2:.4f}: that is as low as it can go")
