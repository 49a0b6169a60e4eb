"""The tick producer service: synthetic feeds and file replay into the ticks topic."""
