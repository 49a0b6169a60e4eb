"""Operations: run, supervise and scale predictor workers."""
