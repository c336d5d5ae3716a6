"""The promtool cases of each rule component, one module per component (`cases/node_pool.py`
proves `node_pool.py`): the input series that make each alert fire and keep it quiet.

A component's alert definitions name their case in one line (`case=cases.cpu()`), so that reading
an alert shows what it says and reading its case shows how it is proven. Case modules never
import their component: what both need (thresholds, selectors) comes from the configuration.
"""
