"""Image metrics: reconstruction PSNR, classifier-FID (Fréchet distance of Fashion-MNIST CNN
features) and the small CNN whose features it uses."""
