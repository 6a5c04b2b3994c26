/** Completed and failed jobs per bucket, as uPlot bars (one chart instance, data swapped on refresh). */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './ui.ts';

const COMPLETED = '#10b981';
const FAILED = '#ef4444';

function options(width: number, stepSeconds: number): uPlot.Options {
  // Side by side in each bucket: completed left of the tick, failed right of it.
  const left = uPlot.paths.bars!({ size: [0.42, 14], align: -1 });
  const right = uPlot.paths.bars!({ size: [0.42, 14], align: 1 });
  return {
    width,
    height: 220,
    padding: [12, 8, 0, 0],
    cursor: { points: { show: false } },
    legend: { show: true, live: false },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(4, max * 1.15)] } },
    axes: [
      { stroke: '#64748b', grid: { show: false }, ticks: { stroke: '#e2e8f0' }, font: '11px system-ui', space: stepSeconds > 60 ? 70 : 55 },
      { stroke: '#64748b', grid: { stroke: '#eef2f7' }, ticks: { show: false }, font: '11px system-ui', size: 44 },
    ],
    series: [
      { label: 'time', value: (_u, v) => (v == null ? '—' : new Date(v * 1000).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })) },
      { label: 'completed', stroke: COMPLETED, fill: `${COMPLETED}d0`, width: 0, paths: left, points: { show: false } },
      { label: 'failed', stroke: FAILED, fill: FAILED, width: 0, paths: right, points: { show: false } },
    ],
  };
}

export function ThroughputChart({ points, stepSeconds }: { points: [number, number, number][]; stepSeconds: number }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const step = useRef(stepSeconds);

  useEffect(() => {
    const data: uPlot.AlignedData = [points.map((p) => p[0]), points.map((p) => p[1]), points.map((p) => p[2])];
    if (!el.current) return;
    if (!plot.current || step.current !== stepSeconds) {
      plot.current?.destroy();
      step.current = stepSeconds;
      plot.current = new uPlot(options(el.current.clientWidth || 600, stepSeconds), data, el.current);
    } else {
      plot.current.setData(data);
    }
  }, [points, stepSeconds]);

  useEffect(() => {
    const resize = () => { if (plot.current && el.current) plot.current.setSize({ width: el.current.clientWidth, height: 220 }); };
    window.addEventListener('resize', resize);
    return () => { window.removeEventListener('resize', resize); plot.current?.destroy(); plot.current = null; };
  }, []);

  return html`<div class="chart" ref=${el} data-points=${points.length}></div>`;
}
